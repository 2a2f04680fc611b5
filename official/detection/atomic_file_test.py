import os
import stat

import pytest

from official.detection import atomic_file


def test_writes_text_and_bytes_and_replaces_the_old_file(tmp_path):
    path = str(tmp_path / "new_dir" / "result.json")
    assert atomic_file.write_atomically(path, '{"AP": 0.5}') == path
    with open(path, encoding="utf-8") as stream:
        assert stream.read() == '{"AP": 0.5}'
    atomic_file.write_atomically(path, b"\xff\x00")
    with open(path, "rb") as stream:
        assert stream.read() == b"\xff\x00"
    assert os.listdir(tmp_path / "new_dir") == ["result.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = str(tmp_path / "params.yaml")
    atomic_file.write_atomically(path, "old: 1\n")

    def fail(source, target):
        assert os.path.dirname(source) == str(tmp_path)  # The same file system as path.
        raise OSError("disk full")

    monkeypatch.setattr(atomic_file.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_file.write_atomically(path, "new: 2\n")
    assert os.listdir(tmp_path) == ["params.yaml"]
    with open(path, encoding="utf-8") as stream:
        assert stream.read() == "old: 1\n"


def test_data_that_is_not_text_or_bytes_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        atomic_file.write_atomically(str(tmp_path / "x.json"), {"AP": 0.5})
    assert os.listdir(tmp_path) == []


def test_the_file_gets_the_mode_the_umask_allows(tmp_path):
    previous = os.umask(0o022)
    try:
        path = atomic_file.write_atomically(str(tmp_path / "image.jpg"), b"jpeg")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
