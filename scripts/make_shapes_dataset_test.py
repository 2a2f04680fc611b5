import os

import pytest
from pycocotools.coco import COCO

from official.detection.datasets import shapes
from official.detection.testing import script_runs

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_shapes_dataset.py")


def _run(*args):
    return script_runs.run_python_script(_SCRIPT, *args, timeout=120)


def _tree(root):
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as stream:
                files[os.path.relpath(path, root)] = stream.read()
    return files


def _small(output_dir, *extra):
    return _run(
        "--output_dir", output_dir, "--num_train", "3", "--num_val", "2", "--image_size", "64",
        *extra,
    )  # fmt: skip


def test_writes_coco_layout_deterministically(tmp_path):
    runs = {}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        result = _small(str(tmp_path / name), "--seed", seed)
        assert result.returncode == 0, result.stderr
        assert "wrote 3 train and 2 val images" in result.stdout
        runs[name] = _tree(str(tmp_path / name))
    assert sorted(runs["a"]) == sorted(
        [os.path.join("annotations", f"instances_{s}2017.json") for s in ("train", "val")]
        + [os.path.join("train2017", f"{i:012d}.jpg") for i in (1, 2, 3)]
        + [os.path.join("val2017", f"{i:012d}.jpg") for i in (1000001, 1000002)]
    )
    assert runs["a"] == runs["b"]
    assert all(runs["a"][name] != runs["c"][name] for name in runs["a"])
    coco = COCO(str(tmp_path / "a" / "annotations" / "instances_train2017.json"))
    assert [image["width"] for image in coco.dataset["images"]] == [64, 64, 64]


def test_options_reach_the_generator(tmp_path):
    result = _run(
        "--output_dir", str(tmp_path), "--num_train", "2", "--num_val", "0",
        "--image_size", "48", "--min_objects", "3", "--max_objects", "3",
        "--min_object_fraction", "0.15", "--max_object_fraction", "0.2", "--jpeg_quality", "75",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    coco = COCO(str(tmp_path / "annotations" / "instances_train2017.json"))
    assert coco.dataset["info"]["generator"] == {
        "seed": 0,
        "split": "train2017",
        "image_size": 48,
        "min_objects": 3,
        "max_objects": 3,
        "min_object_fraction": 0.15,
        "max_object_fraction": 0.2,
        "jpeg_quality": 75,
    }
    assert [len(coco.imgToAnns[i]) for i in coco.imgs] == [3, 3]
    assert COCO(str(tmp_path / "annotations" / "instances_val2017.json")).dataset["images"] == []


def test_defaults_match_the_library():
    defaults = shapes.ShapesOptions()
    assert (defaults.image_size, defaults.min_objects, defaults.max_objects) == (256, 2, 6)
    assert (defaults.min_object_fraction, defaults.max_object_fraction) == (0.1, 0.4)
    result = _run("--help")
    assert result.returncode == 0
    for text in ("--num_train", "(default: 600)", "--image_size", "(default: 256)"):
        assert text in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--num_train", "-1"], r"num_train must be in [0, 10000000], got -1"),
        (["--num_val", "-5"], r"num_val must be in [0, 10000000], got -5"),
        (["--seed", "-1"], r"seed must be in [0, 4294967295], got -1"),
        (["--image_size", "8"], r"image_size must be in [32, 4096], got 8"),
        (
            ["--min_objects", "5", "--max_objects", "2"],
            r"max_objects must be in [min_objects (5), 50], got 2",
        ),
        (["--num_train", "many"], "argument --num_train: invalid int value: 'many'"),
    ],
)
def test_argument_errors_exit_non_zero_without_writing(tmp_path, args, message):
    output_dir = tmp_path / "out"
    result = _run("--output_dir", str(output_dir), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not output_dir.exists()


def test_missing_output_dir_is_an_error():
    result = _run("--num_train", "1")
    assert result.returncode == 2
    assert "the following arguments are required: --output_dir" in result.stderr
