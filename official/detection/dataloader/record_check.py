"""Finds the TFRecord file behind a "truncated record" or "corrupted record" error, and
the record behind an image that does not decode.

TensorFlow's record reader names the byte offset of a bad record but not its file. After
such a failure, `find_broken_record` walks the framing of the files a pattern matches,
one header read and one seek per record (no scan of the data), and names the first file
whose framing breaks: a record cut short by the end of the file, or a length whose
checksum does not match. When the framing of every file holds, the record at the
offset the error named is read and its data checksum checked in each file that has a
record there.

TFRecord framing, per record: uint64 length (little-endian), uint32 masked CRC-32C of
those 8 bytes, `length` bytes of data, uint32 masked CRC-32C of the data.

TensorFlow's image decoders name neither the record nor its `source_id` either. After
such a failure, `find_undecodable_image` reads the records of the matched files and
decodes their images with Pillow until one fails, looking first at those the error
points to (the byte count it names, or images of no known format).
"""

import io
import re
import struct
import time

import tensorflow.compat.v1 as tf
from PIL import Image

# "truncated record at 529925" / "corrupted record at 12" in TensorFlow's reader errors.
_RECORD_ERROR = re.compile(r"(truncated|corrupted) record at (\d+)")
_HEADER = 12
_FOOTER = 4


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def masked_crc32c(data):
    """The masked CRC-32C (Castagnoli) TFRecord stores for `data` (bytes)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record_error_offset(message):
    """The byte offset a TensorFlow record-reader error names, or None for other errors."""
    match = _RECORD_ERROR.search(message)
    return int(match.group(2)) if match else None


def _framing_fault(stream, size):
    """(offset, what) of the first broken record frame of an open file, or None."""
    offset = 0
    while offset < size:
        stream.seek(offset)
        header = stream.read(_HEADER)
        if len(header) < _HEADER:
            return offset, f"the file ends inside the header of the record at byte {offset}"
        length, length_crc = struct.unpack("<QI", header)
        if masked_crc32c(header[:8]) != length_crc:
            return offset, f"the length of the record at byte {offset} fails its checksum"
        end = offset + _HEADER + length + _FOOTER
        if end > size:
            return offset, (
                f"the record at byte {offset} needs {length} bytes of data, but the file "
                f"ends {size - offset - _HEADER} bytes after its header"
            )
        offset = end
    return None


def _data_fault(stream, size, offset):
    """What is wrong with the data of the record starting at `offset`, or None."""
    record_start = 0
    while record_start < offset:
        stream.seek(record_start)
        (length,) = struct.unpack("<Q", stream.read(8))
        record_start += _HEADER + length + _FOOTER
    if record_start != offset or offset + _HEADER > size:
        return None
    stream.seek(offset)
    (length,) = struct.unpack("<Q", stream.read(8))
    stream.seek(offset + _HEADER)
    data = stream.read(length)
    (data_crc,) = struct.unpack("<I", stream.read(_FOOTER))
    if masked_crc32c(data) != data_crc:
        return f"the data of the record at byte {offset} fails its checksum"
    return None


def _matched_paths(file_pattern):
    paths = []
    for pattern in str(file_pattern).split(","):
        if pattern.strip():
            paths.extend(sorted(tf.io.gfile.glob(pattern.strip())))
    return paths


def find_broken_record(file_pattern, offset=None):
    """(path, what is wrong) of the first broken TFRecord file matched, or None.

    Args:
      file_pattern: a glob or comma-separated globs, as in the config's file patterns.
      offset: the byte offset the reader error named; used only when every file's
        framing holds, to check the data checksum of the record there.
    """
    paths = _matched_paths(file_pattern)
    for path in paths:
        with tf.io.gfile.GFile(path, "rb") as stream:
            fault = _framing_fault(stream, stream.size())
        if fault:
            return path, fault[1]
    if offset is None:
        return None
    for path in paths:
        with tf.io.gfile.GFile(path, "rb") as stream:
            fault = _data_fault(stream, stream.size(), offset)
        if fault:
            return path, fault
    return None


# Signatures of the formats TensorFlow's `decode_image` reads.
_IMAGE_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
}
# "data size 270" (JPEG, TensorFlow 1.15) / "Invalid PNG data, size 60".
_DECODE_SIZE = re.compile(r"(?:data size|data, size) (\d+)")
_NO_FORMAT = ("Unknown image file format", "Unable to decode bytes", "Input is empty")


def image_decode_error(message):
    """Whether a TensorFlow error message comes from decoding an image."""
    if any(text in message for text in _NO_FORMAT):
        return True
    return bool(re.search(r"Invalid (JPEG|PNG|GIF|BMP) data|jpeg::Uncompress", message))


def _records(path):
    """Yields the data of each record of a TFRecord file, up to the first broken frame."""
    with tf.io.gfile.GFile(path, "rb") as stream:
        while True:
            header = stream.read(_HEADER)
            if len(header) < _HEADER:
                return
            (length,) = struct.unpack("<Q", header[:8])
            data = stream.read(length)
            if len(data) < length or len(stream.read(_FOOTER)) < _FOOTER:
                return
            yield data


def _image_fault(encoded):
    """Why Pillow cannot decode `encoded` (bytes), or None when it can."""
    kind = next((k for s, k in _IMAGE_SIGNATURES.items() if encoded.startswith(s)), None)
    if kind is None:
        return "not a JPEG, PNG, GIF or BMP image" if encoded else "the image is empty"
    try:
        with Image.open(io.BytesIO(encoded)) as image:
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        detail = re.sub(r" <_io\.BytesIO object at \w+>", "", str(exc)) or type(exc).__name__
        return f"broken {kind} data ({detail}, {len(encoded)} bytes)"
    return None


def find_undecodable_image(file_pattern, message, time_limit_secs=120.0):
    """(path, record index, source_id, what is wrong) of an image that does not decode.

    Args:
      file_pattern: a glob or comma-separated globs, as in the config's file patterns.
      message: the TensorFlow error text; a byte count or "unknown format" in it narrows
        which images are decoded.
      time_limit_secs: give up (and return None) after this long.

    Returns None when no image in the files fails, or when the time runs out.
    """
    size = _DECODE_SIZE.search(message)
    size = int(size.group(1)) if size else None
    no_format = any(text in message for text in _NO_FORMAT)
    deadline = time.monotonic() + time_limit_secs
    for path in _matched_paths(file_pattern):
        for index, data in enumerate(_records(path)):
            if time.monotonic() > deadline:
                return None
            features = tf.train.Example.FromString(data).features.feature
            encoded = b"".join(features["image/encoded"].bytes_list.value[:1])
            if size is not None and len(encoded) != size:
                continue
            if no_format and encoded.startswith(tuple(_IMAGE_SIGNATURES)):
                continue
            fault = _image_fault(encoded)
            if fault:
                source_id = b"".join(features["image/source_id"].bytes_list.value[:1])
                return path, index, source_id.decode("utf-8", "replace"), fault
    return None
