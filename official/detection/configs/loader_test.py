"""Tests of load_config (load order, strictness, messages) and write_config."""

import logging
import os
import subprocess
import sys

import pytest

from official.detection.configs import factory
from official.detection.configs.errors import UnknownKeyError
from official.detection.configs.loader import (
    PARAMS_FILE,
    ConfigError,
    Forced,
    load_config,
    write_config,
)
from official.detection.configs.overrides_test import SEED_OVERRIDE


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_equal_config_generator():
    for model in factory.MODELS:
        assert load_config(model) == factory.config_generator(model)


def test_precedence_file_then_override_then_forced(tmp_path):
    config_file = _write(
        tmp_path,
        "c.yaml",
        "train:\n  total_steps: 100\n  train_batch_size: 8\n  iterations_per_loop: 5\n"
        "model_dir: /from/file\n",
    )
    params = load_config(
        "retinanet",
        config_file=config_file,
        params_override="train.train_batch_size=4,train.iterations_per_loop=2,model_dir=/over",
        forced={"train.iterations_per_loop": 1, "model_dir": "/flag"},
    )
    assert params.train.total_steps == 100
    assert params.train.train_batch_size == 4
    assert params.train.iterations_per_loop == 1
    assert params.model_dir == "/flag"
    assert params.train.l2_weight_decay == 0.0001
    assert params.source_of("train.total_steps") == f"file {config_file}"
    assert params.source_of("train.train_batch_size") == "--params_override"
    assert params.source_of("train.iterations_per_loop") == "flag --iterations_per_loop"
    assert params.source_of("train.l2_weight_decay") == "default"


def test_seed_command_override_on_top_of_a_file(tmp_path):
    config_file = _write(tmp_path, "s.yaml", "train:\n  total_steps: 231500\n")
    params = load_config("retinanet", config_file=config_file, params_override=SEED_OVERRIDE)
    assert params.train.total_steps == 10 and params.train.train_batch_size == 4
    assert params.train.train_file_pattern == "/data/train-*"
    assert params.eval.val_json_file == "/d/annotations/instances_val2017.json"
    assert params.eval.eval_file_pattern == "/d/val-*"


def test_override_from_a_yaml_path(tmp_path):
    override = _write(tmp_path, "o.yaml", "train:\n  total_steps: 7\n")
    params = load_config("mask_rcnn", params_override=override)
    assert params.train.total_steps == 7
    assert params.source_of("train.total_steps") == f"file {override} (from --params_override)"


def test_forced_with_a_named_flag():
    params = load_config(
        "faster_rcnn", forced={"architecture.use_bfloat16": Forced(False, "--device")}
    )
    assert params.architecture.use_bfloat16 is False
    assert params.source_of("architecture.use_bfloat16") == "flag --device"


def test_missing_config_file_names_the_path(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=rf"file {missing}: no such file"):
        load_config("retinanet", config_file=missing)


def test_bad_yaml_and_non_mapping_config_files(tmp_path):
    bad = _write(tmp_path, "bad.yaml", "train: {total_steps: 1\n")
    with pytest.raises(ConfigError, match=rf"file {bad}: invalid YAML at line 2"):
        load_config("retinanet", config_file=bad)
    listing = _write(tmp_path, "list.yaml", "- train\n")
    with pytest.raises(ConfigError, match=rf"file {listing}: the top level must be a mapping"):
        load_config("retinanet", config_file=listing)


def test_config_file_must_be_a_path():
    with pytest.raises(ConfigError, match=r"--config_file: expected a path; received 3 \(int\)"):
        load_config("retinanet", config_file=3)


def test_unknown_keys_top_level_and_nested(tmp_path):
    config_file = _write(tmp_path, "c.yaml", "total_steps: 10\n")
    with pytest.raises(UnknownKeyError) as info:
        load_config("retinanet", config_file=config_file)
    message = str(info.value)
    assert message.startswith(f"unknown key 'total_steps' (from file {config_file}); ")
    assert (
        "did you mean 'train.total_steps'? valid keys in the top level: type, model_dir" in message
    )
    with pytest.raises(UnknownKeyError) as info:
        load_config("retinanet", params_override="{train: {optimizer: {momentun: 0.8}}}")
    assert str(info.value) == (
        "unknown key 'train.optimizer.momentun' (from --params_override); did you mean "
        "'train.optimizer.momentum'? valid keys in 'train.optimizer': type, momentum"
    )


def test_unknown_key_with_a_typo_elsewhere():
    with pytest.raises(UnknownKeyError, match="did you mean 'retinanet_parser.aug_scale_max'"):
        load_config("retinanet", params_override="{retinanet_parser: {aug_scale_mx: 2.0}}")


def test_dotted_key_inside_a_mapping_explains_nesting():
    with pytest.raises(UnknownKeyError, match="a dotted key is not expanded inside a mapping"):
        load_config("retinanet", params_override="{train.total_steps: 10}")


def test_unknown_forced_key_names_the_flag():
    with pytest.raises(UnknownKeyError, match=r"unknown key 'devise' \(from flag --devise\)"):
        load_config("retinanet", forced={"devise": "npu"})


def test_wrong_type_names_path_source_received_expected(tmp_path):
    config_file = _write(tmp_path, "c.yaml", "train:\n  total_steps: ten\n")
    with pytest.raises(ConfigError) as info:
        load_config("retinanet", config_file=config_file)
    assert str(info.value) == (
        f"train.total_steps (from file {config_file}): expected int; received 'ten' (str)"
    )


def test_choice_violation_lists_choices():
    with pytest.raises(ConfigError) as info:
        load_config("retinanet", params_override="resnet.resnet_depth=51")
    assert str(info.value) == (
        "resnet.resnet_depth (from --params_override): 51 (int) is not a valid choice; "
        "expected one of 10, 18, 34, 50, 101, 152, 200"
    )
    with pytest.raises(ConfigError, match="expected one of 'momentum', 'sgd', 'adam'"):
        load_config("retinanet", params_override="train.optimizer.type=lars")
    with pytest.raises(ConfigError, match="expected one of 'step', 'cosine'"):
        load_config("retinanet", params_override="train.learning_rate.type=linear")
    with pytest.raises(ConfigError, match="expected one of 'box', 'box_and_mask'"):
        load_config("mask_rcnn", params_override="eval.type=mask")
    with pytest.raises(ConfigError, match="'49S', '49', '96', '143', '143L', '190'"):
        load_config("retinanet", params_override="spinenet.model_id='50'")
    with pytest.raises(ConfigError) as info:
        load_config("mask_rcnn", params_override="architecture.box_convention=tpu")
    assert str(info.value) == (
        "architecture.box_convention (from --params_override): 'tpu' (str) is not a valid "
        "choice; expected one of 'consistent', 'tensorflow_tpu'"
    )


def test_section_given_a_value_and_empty_section():
    with pytest.raises(
        ConfigError, match=r"train.optimizer \(from --params_override\): expected a"
    ):
        load_config("retinanet", params_override="train.optimizer=sgd")
    assert (
        load_config("retinanet", params_override="{retinanet_head: }").retinanet_head.num_filters
        == 256
    )


def test_frozen_key_rejects_other_values():
    with pytest.raises(
        ConfigError, match=r"dropblock.dropblock_keep_prob \(from --params_override"
    ):
        load_config("retinanet", params_override="dropblock.dropblock_keep_prob=0.9")


def test_model_type_in_files(tmp_path):
    retinanet_file = _write(tmp_path, "r.yaml", "type: 'retinanet'\n")
    mask_file = _write(tmp_path, "m.yaml", "type: mask_rcnn\n")
    assert load_config("retinanet", config_file=retinanet_file).type == "retinanet"
    assert load_config("faster_rcnn", config_file=mask_file).architecture.include_mask is False
    with pytest.raises(ConfigError) as info:
        load_config("mask_rcnn", config_file=retinanet_file)
    assert str(info.value) == (
        f"type (from file {retinanet_file}): the config is for model type 'retinanet', but "
        "model 'mask_rcnn' needs type 'mask_rcnn'; use a mask_rcnn config or choose the "
        "matching model"
    )


def test_legacy_alias_conflict():
    with pytest.raises(ConfigError, match="given twice with different values, as 'num_filters'"):
        load_config(
            "retinanet",
            params_override="{retinanet_head: {num_filters: 64, retinanet_head_num_filters: 128}}",
        )


def test_unknown_model():
    with pytest.raises(ConfigError, match="unknown model 'maskrcnn'; did you mean 'mask_rcnn'"):
        load_config("maskrcnn")


def test_inert_settings_are_logged(caplog):
    with caplog.at_level(logging.INFO, logger="official.detection.configs"):
        load_config("retinanet", forced={"use_tpu": False})
    assert "use_tpu = False (flag --use_tpu) has no effect in this project." in caplog.text


@pytest.mark.parametrize("model", sorted(factory.MODELS))
def test_write_config_round_trips(tmp_path, model):
    params = load_config(
        model,
        params_override="train.total_steps=10,anchor.aspect_ratios=[1.0,2.0],"
        "train.l2_weight_decay=4e-5,train.checkpoint.prefix='1e-4'",
        forced={"model_dir": str(tmp_path / "run")},
    )
    path = write_config(params, params.model_dir)
    assert path == os.path.join(str(tmp_path / "run"), PARAMS_FILE)
    assert os.listdir(params.model_dir) == [PARAMS_FILE]
    with open(path) as stream:
        assert stream.readline().startswith("# Resolved configuration")
    reloaded = load_config(model, config_file=path)
    assert reloaded == params
    assert reloaded.as_dict() == params.as_dict()


def test_write_config_replaces_an_existing_file(tmp_path):
    write_config(load_config("retinanet", params_override="train.total_steps=1"), str(tmp_path))
    write_config(load_config("retinanet", params_override="train.total_steps=2"), str(tmp_path))
    assert load_config("retinanet", config_file=str(tmp_path / PARAMS_FILE)).train.total_steps == 2
    assert os.listdir(tmp_path) == [PARAMS_FILE]


def test_write_config_needs_a_model_dir():
    with pytest.raises(ConfigError, match="write_config: model_dir is empty; set --model_dir"):
        write_config(factory.config_generator("retinanet"), "")


def test_config_engine_does_not_import_tensorflow():
    code = (
        "import sys; from official.detection.configs import factory, loader; "
        "loader.load_config('mask_rcnn'); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
