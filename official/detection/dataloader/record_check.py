"""Finds the TFRecord file behind a "truncated record" or "corrupted record" error.

TensorFlow's record reader names the byte offset of a bad record but not its file. After
such a failure, `find_broken_record` walks the framing of the files a pattern matches,
one header read and one seek per record (no scan of the data), and names the first file
whose framing breaks: a record cut short by the end of the file, or a length whose
checksum does not match. When the framing of every file holds, the record at the
offset the error named is read and its data checksum checked in each file that has a
record there.

TFRecord framing, per record: uint64 length (little-endian), uint32 masked CRC-32C of
those 8 bytes, `length` bytes of data, uint32 masked CRC-32C of the data.
"""

import re
import struct

import tensorflow.compat.v1 as tf

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


def find_broken_record(file_pattern, offset=None):
    """(path, what is wrong) of the first broken TFRecord file matched, or None.

    Args:
      file_pattern: a glob or comma-separated globs, as in the config's file patterns.
      offset: the byte offset the reader error named; used only when every file's
        framing holds, to check the data checksum of the record there.
    """
    paths = []
    for pattern in str(file_pattern).split(","):
        if pattern.strip():
            paths.extend(sorted(tf.io.gfile.glob(pattern.strip())))
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
