"""End-to-end test of download_and_preprocess_mscoco.sh against a local COCO mirror.

Tiny zips with the real file names are served by an http.server on 127.0.0.1 (with
Range support, like the official host); the script runs with small shard counts.
"""

import functools
import http.server
import io
import json
import os
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "download_and_preprocess_mscoco.sh")
NUM_IMAGES = {"train2017": 3, "val2017": 2, "test2017": 2}


def _jpeg(seed):
    pixels = np.random.RandomState(seed).randint(0, 255, (32, 48, 3)).astype(np.uint8)
    output = io.BytesIO()
    Image.fromarray(pixels).save(output, format="JPEG")
    return output.getvalue()


def _zip(members):
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return output.getvalue()


def _images(split):
    return [
        {"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "height": 32, "width": 48}
        for i in range(NUM_IMAGES[split])
    ]


def _instances(split):
    annotations = [
        {"id": 100 + image["id"], "image_id": image["id"], "category_id": 18, "iscrowd": 0,
         "bbox": [4, 4, 20, 10], "area": 200.0, "segmentation": [[4, 4, 24, 4, 24, 14, 4, 14]]}
        for image in _images(split)
    ]  # fmt: skip
    categories = [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}]
    return {"images": _images(split), "annotations": annotations, "categories": categories}


def build_mirror():
    """{url path: bytes} of a COCO 2017 mirror in miniature."""
    files = {}
    seed = 0
    for split in NUM_IMAGES:
        members = {}
        for image in _images(split):
            seed += 1
            members[f"{split}/{image['file_name']}"] = _jpeg(seed)
        files[f"/zips/{split}.zip"] = _zip(members)
    annotations = {}
    for split in ("train2017", "val2017"):
        annotations[f"annotations/instances_{split}.json"] = json.dumps(_instances(split))
        captions = [{"id": 1, "image_id": 1, "caption": "a dog"}]
        annotations[f"annotations/captions_{split}.json"] = json.dumps(
            {"images": _images(split), "annotations": captions}
        )
    files["/annotations/annotations_trainval2017.zip"] = _zip(annotations)
    info = json.dumps({"images": _images("test2017"), "categories": []})
    files["/annotations/image_info_test2017.zip"] = _zip(
        {
            "annotations/image_info_test2017.json": info,
            "annotations/image_info_test-dev2017.json": info,
        }
    )
    return files


class _MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Serves `files`, honours 'Range: bytes=N-', records (path, range header) per request."""

    def __init__(self, *args, files, requests, **kwargs):
        self.files = files
        self.requests = requests
        super().__init__(*args, **kwargs)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.requests.append((self.path, self.headers.get("Range")))
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        byte_range = self.headers.get("Range", "")
        if byte_range.startswith("bytes=") and byte_range.endswith("-"):
            start = int(byte_range[len("bytes=") : -1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror():
    """(base url, files dict to edit, list of requests) of a running local mirror."""
    files = build_mirror()
    requests = []
    handler = functools.partial(_MirrorHandler, files=files, requests=requests)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files, requests
    server.shutdown()
    server.server_close()
    thread.join()


def _run(data_dir, base_url=None, path=None, **env_overrides):
    env = dict(
        os.environ,
        COCO_TRAIN_SHARDS="2",
        COCO_VAL_SHARDS="2",
        COCO_TEST_SHARDS="1",
        COCO_NUM_WORKERS="1",
        COCO_MIN_FREE_GB="0",
        PYTHON=sys.executable,
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    env.pop("COCO_DOWNLOADER", None)
    if base_url:
        env["COCO_BASE_URL"] = base_url
    if path:
        env["PATH"] = path
    env.update(env_overrides)
    args = ["bash", SCRIPT] + ([str(data_dir)] if data_dir is not None else [])
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)


def _count_records(pattern):
    return sum(1 for path in tf.io.gfile.glob(pattern) for _ in tf.io.tf_record_iterator(path))


def test_download_convert_and_rerun(mirror, tmp_path):
    base_url, files, requests = mirror
    data_dir = tmp_path / "coco"
    # A partial val2017.zip from an interrupted run: the script must resume it.
    (data_dir / "raw-data").mkdir(parents=True)
    partial = files["/zips/val2017.zip"][:100]
    (data_dir / "raw-data" / "val2017.zip").write_bytes(partial)

    result = _run(data_dir, base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(path for path, _ in requests) == sorted(files)
    assert ("/zips/val2017.zip", "bytes=100-") in requests
    assert sorted(os.listdir(data_dir / "annotations")) == [
        "captions_train2017.json", "captions_val2017.json", "image_info_test-dev2017.json",
        "image_info_test2017.json", "instances_train2017.json", "instances_val2017.json",
    ]  # fmt: skip
    with open(data_dir / "annotations" / "instances_val2017.json") as f:
        assert json.load(f) == _instances("val2017")
    records = sorted(p for p in os.listdir(data_dir) if p.endswith(".tfrecord"))
    assert records == [
        "test-00000-of-00001.tfrecord", "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord", "val-00000-of-00002.tfrecord",
        "val-00001-of-00002.tfrecord",
    ]  # fmt: skip
    assert _count_records(str(data_dir / "train-*")) == 3
    assert _count_records(str(data_dir / "val-*")) == 2
    assert _count_records(str(data_dir / "test-*")) == 2
    val = next(tf.io.tf_record_iterator(str(data_dir / "val-00000-of-00002.tfrecord")))
    feature = tf.train.Example.FromString(val).features.feature
    assert feature["image/object/class/label"].int64_list.value == [18]
    assert len(feature["image/object/mask"].bytes_list.value) == 1
    assert feature["image/caption"].bytes_list.value == [b"a dog"]
    test = next(tf.io.tf_record_iterator(str(data_dir / "test-00000-of-00001.tfrecord")))
    assert (
        not tf.train.Example.FromString(test)
        .features.feature["image/object/class/label"]
        .int64_list.value
    )
    assert "Wrote 3 images and 3 objects" in result.stdout
    assert sorted(os.listdir(data_dir / ".done")) == sorted(
        [f"download_{os.path.basename(p)}" for p in files]
        + [f"unzip_{os.path.basename(p)}" for p in files]
        + ["convert_test-1", "convert_train-2", "convert_val-2"]
    )

    mtimes = {p: os.stat(data_dir / p).st_mtime_ns for p in records}
    num_requests = len(requests)
    again = _run(data_dir, base_url)
    assert again.returncode == 0, again.stderr
    assert len(requests) == num_requests
    assert again.stdout.count("skip: ") == 13
    assert {p: os.stat(data_dir / p).st_mtime_ns for p in records} == mtimes


def test_corrupt_zip_is_fetched_twice_then_an_error(mirror, tmp_path):
    base_url, files, requests = mirror
    files["/zips/val2017.zip"] = b"this is not a zip archive"
    result = _run(tmp_path / "coco", base_url)
    assert result.returncode == 1
    assert (
        f"error: could not get {base_url}/zips/val2017.zip after 2 attempts: the file is not "
        "a valid zip archive" in result.stderr
    )
    assert [path for path, _ in requests].count("/zips/val2017.zip") == 2
    assert not (tmp_path / "coco" / ".done" / "download_val2017.zip").exists()
    assert not (tmp_path / "coco" / "raw-data" / "val2017.zip").exists()


def test_failed_download_with_wget(mirror, tmp_path):
    base_url, files, requests = mirror
    del files["/annotations/image_info_test2017.zip"]
    result = _run(tmp_path / "coco", base_url, COCO_DOWNLOADER="wget")
    assert result.returncode == 1
    assert (
        f"could not get {base_url}/annotations/image_info_test2017.zip after 2 attempts: the "
        "download failed (wget exit status 8)" in result.stderr
    )
    assert (tmp_path / "coco" / ".done" / "download_annotations_trainval2017.zip").exists()
    assert zipfile.is_zipfile(tmp_path / "coco" / "raw-data" / "train2017.zip")


def test_usage_and_environment_errors(mirror, tmp_path):
    base_url, _, requests = mirror
    result = _run(None)
    assert result.returncode == 1
    assert result.stderr.startswith("usage: bash download_and_preprocess_mscoco.sh <data_dir>")

    result = _run(tmp_path / "coco", base_url, COCO_MIN_FREE_GB="100000000")
    assert result.returncode == 1
    assert "error: not enough disk space in" in result.stderr
    assert "lower COCO_MIN_FREE_GB" in result.stderr

    result = _run(tmp_path / "coco", base_url, PYTHON="no-such-python")
    assert result.returncode == 1
    assert "Python interpreter 'no-such-python' not found" in result.stderr

    # A PATH with every usual tool except curl and wget.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for name in os.listdir(directory) if os.path.isdir(directory) else []:
            if name not in ("curl", "wget") and not (fake_bin / name).exists():
                os.symlink(os.path.join(directory, name), fake_bin / name)
    result = _run(tmp_path / "coco", base_url, path=str(fake_bin))
    assert result.returncode == 1
    assert "error: neither curl nor wget is installed" in result.stderr
    assert requests == []
