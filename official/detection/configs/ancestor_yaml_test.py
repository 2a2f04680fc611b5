"""The ancestor's published SpineNet YAMLs load strictly (contents typed in as facts).

Two generations exist: older files give SpineNet's scale as four numbers and
the RetinaNet head width as `retinanet_head_num_filters`; newer ones use
`spinenet.model_id`. Both must load, and mean the same network.
"""

import pytest

from official.detection.configs.loader import load_config
from official.detection.configs.overrides_test import SEED_OVERRIDE

_RETINANET_TRAIN = """
architecture:
  backbone: 'spinenet'
  multilevel_features: 'identity'
train:
  total_steps: 231500
  train_batch_size: 256
  learning_rate:
    warmup_steps: 2000
    init_learning_rate: 0.28
    learning_rate_levels: [0.028, 0.0028]
    learning_rate_steps: [217610, 226870]
  l2_weight_decay: 0.00004
  gradient_clip_norm: 10.0
batch_norm_activation:
  use_sync_bn: true
  activation: 'swish'
"""

_MRCNN_TRAIN = """
architecture:
  backbone: 'spinenet'
  min_level: 3
  max_level: 7
  multilevel_features: 'identity'
  parser: 'maskrcnn_parser'
train:
  total_steps: {total_steps}
  train_batch_size: 256
  learning_rate:
    warmup_steps: 2000
    init_learning_rate: 0.28
    learning_rate_levels: [0.028, 0.0028]
    learning_rate_steps: {steps}
  l2_weight_decay: 0.00004
anchor:
  anchor_size: {anchor_size}
batch_norm_activation:
  batch_norm_epsilon: 0.001
  batch_norm_momentum: 0.99
  use_sync_bn: true
"""

RETINANET_YAMLS = {
    "spinenet49S_retinanet.yaml (model_id)": _RETINANET_TRAIN
    + """
spinenet:
  model_id: '49S'
  init_drop_connect_rate: 0.2
retinanet_head:
  retinanet_head_num_filters: 128
anchor:
  anchor_size: 3.0
retinanet_parser:
  output_size: [640, 640]
  aug_scale_min: 0.5
  aug_scale_max: 2.0
""",
    "spinenet49S_retinanet.yaml (scale numbers)": _RETINANET_TRAIN
    + """
spinenet:
  filter_size_scale: 0.65
  block_repeats: 1
  resample_alpha: 0.5
  endpoints_num_filters: 128
  init_drop_connect_rate: 0.2
retinanet_head:
  retinanet_head_num_filters: 128
anchor:
  anchor_size: 3.0
retinanet_parser:
  output_size: [640, 640]
  aug_scale_min: 0.5
  aug_scale_max: 2.0
""",
    "spinenet49_retinanet.yaml": _RETINANET_TRAIN
    + """
spinenet:
  model_id: '49'
  init_drop_connect_rate: 0.2
anchor:
  anchor_size: 3.0
retinanet_parser:
  output_size: [640, 640]
  aug_scale_min: 0.5
  aug_scale_max: 2.0
""",
    "spinenet96_retinanet.yaml": _RETINANET_TRAIN
    + """
spinenet:
  filter_size_scale: 1.0
  block_repeats: 2
  resample_alpha: 0.5
  endpoints_num_filters: 256
  init_drop_connect_rate: 0.2
anchor:
  anchor_size: 3.0
retinanet_parser:
  output_size: [1024, 1024]
  aug_scale_min: 0.5
  aug_scale_max: 2.0
""",
    "spinenet143_retinanet.yaml": _RETINANET_TRAIN
    + """
spinenet:
  filter_size_scale: 1.0
  block_repeats: 3
  resample_alpha: 1.0
  endpoints_num_filters: 256
  init_drop_connect_rate: 0.2
retinanet_parser:
  output_size: [1280, 1280]
  aug_scale_min: 0.5
  aug_scale_max: 2.0
""",
    "spinenet190_retinanet.yaml": _RETINANET_TRAIN
    + """
spinenet:
  filter_size_scale: 1.3
  block_repeats: 4
  resample_alpha: 1.0
  endpoints_num_filters: 512
  init_drop_connect_rate: 0.2
retinanet_head:
  retinanet_head_num_filters: 512
  retinanet_head_num_convs: 7
retinanet_parser:
  output_size: [1280, 1280]
  aug_scale_min: 0.5
  aug_scale_max: 2.0
""",
}

_MRCNN_PARSER = """
maskrcnn_parser:
  output_size: [{size}, {size}]
  aug_scale_min: {scale_min}
  aug_scale_max: 2.0
"""
_STEPS_162K = dict(total_steps=162050, steps=[148160, 157420], anchor_size=3.0)

MRCNN_YAMLS = {
    "spinenet49_mrcnn.yaml": _MRCNN_TRAIN.format(**_STEPS_162K)
    + "spinenet:\n  model_id: '49'\n"
    + _MRCNN_PARSER.format(size=640, scale_min=0.5)
    + "rpn_head:\n  use_batch_norm: true\n"
    "frcnn_head:\n  num_convs: 4\n  num_fcs: 1\n  use_batch_norm: true\n"
    "mrcnn_head:\n  use_batch_norm: true\n",
    "spinenet49s_mrcnn.yaml": _MRCNN_TRAIN.format(**_STEPS_162K)
    + "spinenet:\n  model_id: '49S'\n"
    + _MRCNN_PARSER.format(size=640, scale_min=0.5)
    + "rpn_head:\n  num_filters: 128\n  use_batch_norm: true\n"
    "frcnn_head:\n  num_convs: 4\n  num_filters: 128\n  num_fcs: 1\n  fc_dims: 512\n"
    "  use_batch_norm: true\n"
    "mrcnn_head:\n  num_filters: 128\n  use_batch_norm: true\n",
    "spinenet96_mrcnn.yaml": _MRCNN_TRAIN.format(
        total_steps=164150, steps=[150080, 159460], anchor_size=3.0
    )
    + "spinenet:\n  model_id: '96'\n"
    + _MRCNN_PARSER.format(size=1024, scale_min=0.5)
    + "rpn_head:\n  use_batch_norm: true\n"
    "frcnn_head:\n  num_convs: 4\n  num_fcs: 1\n  use_batch_norm: true\n"
    "mrcnn_head:\n  use_batch_norm: true\n",
    "spinenet143_mrcnn.yaml": _MRCNN_TRAIN.format(**_STEPS_162K)
    + "spinenet:\n  model_id: '143'\n"
    + _MRCNN_PARSER.format(size=1280, scale_min=0.5)
    + "rpn_head:\n  use_batch_norm: true\n"
    "frcnn_head:\n  num_convs: 4\n  num_fcs: 1\n  use_batch_norm: true\n"
    "mrcnn_head:\n  use_batch_norm: true\n",
    "spinenet190_mrcnn.yaml": _MRCNN_TRAIN.format(
        total_steps=187600, steps=[173530, 182910], anchor_size=5.0
    ).replace("use_sync_bn: true", "use_sync_bn: true\n  activation: 'swish'")
    + "spinenet:\n  model_id: '190'\n  init_drop_connect_rate: 0.2\n"
    + _MRCNN_PARSER.format(size=1536, scale_min=0.1)
    + "rpn_head:\n  num_convs: 7\n  num_filters: 384\n  use_batch_norm: true\n"
    "frcnn_head:\n  num_convs: 7\n  num_filters: 384\n  num_fcs: 1\n  use_batch_norm: true\n"
    "mrcnn_head:\n  num_convs: 7\n  num_filters: 384\n  use_batch_norm: true\n",
}


def _write(tmp_path, text):
    path = tmp_path / "ancestor.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("name", sorted(RETINANET_YAMLS))
def test_retinanet_yamls_load(tmp_path, name):
    params = load_config("retinanet", config_file=_write(tmp_path, RETINANET_YAMLS[name]))
    assert params.architecture.backbone == "spinenet"
    assert params.architecture.multilevel_features == "identity"
    assert params.train.learning_rate.learning_rate_steps == (217610, 226870)
    assert params.train.l2_weight_decay == 4e-5
    assert params.batch_norm_activation.activation == "swish"
    assert params.spinenet.init_drop_connect_rate == 0.2


@pytest.mark.parametrize("name", sorted(MRCNN_YAMLS))
@pytest.mark.parametrize("model", ["mask_rcnn", "faster_rcnn"])
def test_mrcnn_yamls_load(tmp_path, name, model):
    params = load_config(model, config_file=_write(tmp_path, MRCNN_YAMLS[name]))
    assert params.architecture.min_level == 3 and params.architecture.max_level == 7
    assert params.batch_norm_activation.batch_norm_momentum == 0.99
    assert params.rpn_head.use_batch_norm and params.mrcnn_head.use_batch_norm
    assert params.frcnn_head.num_fcs == 1
    assert params.architecture.include_mask is (model == "mask_rcnn")


def test_both_49s_retinanet_generations_give_the_same_head_and_scale(tmp_path):
    by_id = load_config(
        "retinanet",
        config_file=_write(tmp_path, RETINANET_YAMLS["spinenet49S_retinanet.yaml (model_id)"]),
    )
    by_numbers = load_config(
        "retinanet",
        config_file=_write(tmp_path, RETINANET_YAMLS["spinenet49S_retinanet.yaml (scale numbers)"]),
    )
    assert by_id.retinanet_head.num_filters == by_numbers.retinanet_head.num_filters == 128
    assert by_id.spinenet.model_id == "49S" and by_id.spinenet.endpoints_num_filters is None
    assert by_numbers.spinenet.model_id == "49"
    assert by_numbers.spinenet.filter_size_scale == 0.65
    assert by_numbers.spinenet.endpoints_num_filters == 128


def test_spinenet190_retinanet_head(tmp_path):
    params = load_config(
        "retinanet", config_file=_write(tmp_path, RETINANET_YAMLS["spinenet190_retinanet.yaml"])
    )
    assert params.retinanet_head.num_filters == 512 and params.retinanet_head.num_convs == 7
    assert params.retinanet_parser.output_size == (1280, 1280)


def test_second_seed_command(tmp_path):
    """--config_file=spinenet49S_retinanet.yaml plus the seed's --params_override."""
    params = load_config(
        "retinanet",
        config_file=_write(tmp_path, RETINANET_YAMLS["spinenet49S_retinanet.yaml (model_id)"]),
        params_override=SEED_OVERRIDE,
        forced={"model_dir": "./result", "use_tpu": False},
    )
    assert params.train.total_steps == 10 and params.train.train_batch_size == 4
    assert params.train.learning_rate.warmup_steps == 2000
    assert params.spinenet.model_id == "49S" and params.anchor.anchor_size == 3.0
    assert params.eval.eval_file_pattern == "/d/val-*"
    assert params.model_dir == "./result" and params.use_tpu is False
