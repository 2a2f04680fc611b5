"""record_check: finding the broken file behind a TFRecord reader error."""

import io
import struct

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image

from official.detection.dataloader import record_check, tf_example_builder


def _write(path, payloads):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for payload in payloads:
            writer.write(payload)
    return path


@pytest.fixture
def shards(tmp_path):
    """Two shards of three records of 100, 200 and 300 bytes each."""
    payloads = [bytes([i]) * size for i, size in enumerate((100, 200, 300))]
    return [_write(tmp_path / f"train-0000{k}-of-00002", payloads) for k in range(2)]


def test_checksums_equal_those_tensorflow_writes(shards):
    data = shards[0].read_bytes()
    length, length_crc = struct.unpack("<QI", data[:12])
    assert length == 100
    assert record_check.masked_crc32c(data[:8]) == length_crc
    (data_crc,) = struct.unpack("<I", data[112:116])
    assert record_check.masked_crc32c(data[12:112]) == data_crc
    # The CRC-32C check value of "123456789" is 0xE3069283 before masking.
    crc = 0xE3069283
    assert (
        record_check.masked_crc32c(b"123456789")
        == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    )


def test_intact_files_have_no_fault(shards, tmp_path):
    assert record_check.find_broken_record(str(tmp_path / "train-*"), offset=116) is None


@pytest.mark.parametrize(
    "size, message",
    [
        (116 + 216 + 100, "the record at byte 332 needs 300 bytes of data, but the file ends 88"),
        (116 + 5, "the file ends inside the header of the record at byte 116"),
    ],
)
def test_a_truncated_shard_is_named(shards, tmp_path, size, message):
    data = shards[1].read_bytes()
    shards[1].write_bytes(data[:size])
    path, what = record_check.find_broken_record(f"{tmp_path}/none-*,{tmp_path}/train-*")
    assert path == str(shards[1])
    assert what.startswith(message)


def test_a_corrupt_length_and_corrupt_data(shards, tmp_path):
    data = bytearray(shards[0].read_bytes())
    data[116] ^= 1  # the second record's length
    shards[0].write_bytes(bytes(data))
    assert record_check.find_broken_record(str(tmp_path / "train-*")) == (
        str(shards[0]),
        "the length of the record at byte 116 fails its checksum",
    )
    data[116] ^= 1
    data[116 + 12 + 50] ^= 1  # inside the second record's data: the framing holds
    shards[0].write_bytes(bytes(data))
    assert record_check.find_broken_record(str(tmp_path / "train-*")) is None
    assert record_check.find_broken_record(str(tmp_path / "train-*"), offset=116) == (
        str(shards[0]),
        "the data of the record at byte 116 fails its checksum",
    )


def test_reader_errors_give_the_offset():
    assert record_check.record_error_offset("truncated record at 529925\n\t [[node]]") == 529925
    assert record_check.record_error_offset("corrupted record at 12") == 12
    assert record_check.record_error_offset("Checksum does not match: stored 1") is None


def test_tensorflows_reader_fails_where_the_check_says(shards, tmp_path):
    shards[1].write_bytes(shards[1].read_bytes()[:400])
    with pytest.raises(tf.errors.DataLossError) as error:
        list(tf.io.tf_record_iterator(str(shards[1])))
    offset = record_check.record_error_offset(str(error.value))
    assert offset == 332
    path, what = record_check.find_broken_record(str(tmp_path / "train-*"), offset)
    assert path == str(shards[1]) and "record at byte 332" in what


def _example(encoded, source_id):
    return tf_example_builder.build_example(
        encoded, 8, 8, [[0.1, 0.1, 0.5, 0.5]], [1], source_id=source_id
    ).SerializeToString()


@pytest.fixture
def image_records(tmp_path):
    """Two shards; the second holds a truncated PNG (source_id "b1") after a good one."""
    png = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(png, format="PNG")
    png = png.getvalue()
    jpeg = tf_example_builder.encode_image(np.full((8, 8, 3), 200, np.uint8))
    first = _write(tmp_path / "a.tfrecord", [_example(jpeg, "a0"), _example(png, "a1")])
    second = _write(tmp_path / "b.tfrecord", [_example(jpeg, "b0"), _example(png[:40], "b1")])
    return first, second


def test_image_decode_errors_are_told_from_other_errors():
    assert record_check.image_decode_error("Invalid PNG data, size 40")
    assert record_check.image_decode_error("jpeg::Uncompress failed. Invalid JPEG data or crop")
    assert record_check.image_decode_error("Unknown image file format. One of JPEG, PNG")
    assert record_check.image_decode_error("assertion failed: [Unable to decode bytes as JPEG")
    assert not record_check.image_decode_error("Incompatible shapes: [2,3] vs. [2,4]")


def test_the_undecodable_image_is_found_by_the_size_the_error_names(image_records, tmp_path):
    found = record_check.find_undecodable_image(
        str(tmp_path / "*.tfrecord"), "Invalid PNG data, size 40"
    )
    path, index, source_id, fault = found
    assert (path, index, source_id) == (str(image_records[1]), 1, "b1")
    assert fault == "broken PNG data (cannot identify image file, 40 bytes)"
    # A size no image has: nothing to blame.
    assert record_check.find_undecodable_image(str(tmp_path / "*"), "data size 41") is None


def test_without_a_size_every_image_is_decoded_until_one_fails(image_records, tmp_path):
    found = record_check.find_undecodable_image(
        f"{image_records[0]},{image_records[1]}", "Invalid JPEG data or crop window."
    )
    assert found[:3] == (str(image_records[1]), 1, "b1")
    assert record_check.find_undecodable_image(str(image_records[0]), "Invalid JPEG") is None
    assert record_check.find_undecodable_image(str(tmp_path / "*"), "x", 0.0) is None


def test_bytes_of_no_image_format_are_named(tmp_path):
    jpeg = tf_example_builder.encode_image(np.full((8, 8, 3), 200, np.uint8))
    path = _write(tmp_path / "c.tfrecord", [_example(jpeg, "c0"), _example(b"", "c1")])
    found = record_check.find_undecodable_image(str(path), "Input is empty.")
    assert found == (str(path), 1, "c1", "the image is empty")
