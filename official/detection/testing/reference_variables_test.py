import pytest
import tensorflow.compat.v1 as tf

from official.detection.testing import reference_variables as ref


@pytest.mark.parametrize(
    "name, num_trainable, num_global, params",
    [
        # Variable counts and parameter totals of the tensorflow/tpu detection models
        # built the same way: trainable variables, global variables, trainable parameters.
        ("retinanet_r50", 285, 767, 34091159),
        ("maskrcnn_r50", 213, 543, 45047153),
        ("retinanet_spinenet49s", 490, 1321, 11265942),
    ],
)
def test_shipped_files_load_with_their_header_counts(name, num_trainable, num_global, params):
    trainable, global_ = ref.load_reference_variables(name)
    assert len(trainable) == num_trainable
    assert len(global_) == num_global
    assert sum(ref.count_parameters(shape) for _, shape in trainable) == params
    assert global_[0] == ("global_step", ())


def test_entries_parse_names_and_shapes():
    trainable, global_ = ref.load_reference_variables("retinanet_r50")
    assert trainable[0] == ("resnet50/conv2d/kernel", (7, 7, 3, 64))
    assert ("resnet50/batch_normalization/moving_mean", (64,)) in global_
    assert ("resnet50/conv2d/kernel/Momentum", (7, 7, 3, 64)) in global_


def test_select_scope_drops_optimizer_slots_unless_asked():
    _, global_ = ref.load_reference_variables("retinanet_r50")
    resnet = ref.select_scope(global_, "resnet50/")
    with_slots = ref.select_scope(global_, "resnet50/", include_slots=True)
    assert len(resnet) == 265
    assert len(with_slots) == 265 + 159
    assert not any(n.endswith("/Momentum") for n, _ in resnet)


def test_graph_variables_use_the_same_form():
    with tf.Graph().as_default():
        with tf.variable_scope("a"):
            tf.get_variable("w", [2, 3])
            tf.get_variable("s", [])
        assert ref.graph_variables(tf.global_variables()) == [("a/w", (2, 3)), ("a/s", ())]


def test_available_references():
    assert ref.available_references() == [
        "maskrcnn_r50",
        "retinanet_r50",
        "retinanet_spinenet49s",
    ]


def test_unknown_name_lists_valid_names():
    with pytest.raises(
        ref.ReferenceFileError,
        match=r"unknown reference 'retinanet_r101'; valid names: \['maskrcnn_r50'",
    ):
        ref.load_reference_variables("retinanet_r101")


def _write(tmp_path, monkeypatch, text):
    (tmp_path / "ancestor_variables_broken.txt").write_text(text)
    monkeypatch.setattr(ref, "REFERENCE_DIR", str(tmp_path))


def test_count_mismatch_is_an_error(tmp_path, monkeypatch):
    _write(
        tmp_path,
        monkeypatch,
        "# trainable variables (2, 6 params)\na/w [2, 3]\n\n"
        "# all global variables in graph (1)\na/w [2, 3]\n",
    )
    with pytest.raises(ref.ReferenceFileError, match=r"header says trainable=2, entries give 1"):
        ref.load_reference_variables("broken")


def test_malformed_entry_is_an_error(tmp_path, monkeypatch):
    _write(tmp_path, monkeypatch, "# trainable variables (1, 6 params)\na/w (2, 3)\n")
    with pytest.raises(ref.ReferenceFileError, match=r"broken.txt:2: expected '<name> \[<dims>\]'"):
        ref.load_reference_variables("broken")


def test_entry_before_header_is_an_error(tmp_path, monkeypatch):
    _write(tmp_path, monkeypatch, "a/w [2, 3]\n")
    with pytest.raises(ref.ReferenceFileError, match=r"broken.txt:1: entry before any section"):
        ref.load_reference_variables("broken")
