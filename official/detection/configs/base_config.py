"""Keys shared by every model: run settings, training, evaluation, backbones.

Key names and defaults are the ancestor's (tensorflow/tpu
models/official/detection/configs/base_config.py). Keys marked `inert` only
mean something on TPUs and are accepted without effect; keys marked `frozen`
name ancestor features that are not implemented here and accept only their
default.
"""

from official.detection.configs.schema import (
    DROP_RATE,
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_ITEMS,
    POSITIVE,
    REGEX,
    Check,
    Field,
    ListOf,
    Section,
)

# Set train.frozen_variable_prefix to this to freeze ResNet's stem and first stage
# (conv2d..conv2d_10 and their batch norms), as Detectron does.
RESNET_FROZEN_VARIABLE_PREFIX = (
    r"(resnet\d+)\/(conv2d(|_([1-9]|10))|batch_normalization(|_([1-9]|10)))\/"
)
REGULARIZATION_VARIABLE_REGEX = r".*(kernel|weight):0$"

RESNET_DEPTHS = (10, 18, 34, 50, 101, 152, 200)
SPINENET_MODEL_IDS = ("49S", "49", "96", "143", "143L", "190")
OPTIMIZER_TYPES = ("momentum", "sgd", "adam", "adadelta", "adagrad", "rmsprop")

_OPTIMIZER = Section(
    "Optimizer.",
    {
        "type": Field("momentum", "Optimizer name.", choices=OPTIMIZER_TYPES),
        "momentum": Field(0.9, "Momentum of 'momentum' and 'rmsprop'.", check=NON_NEGATIVE),
    },
)

_LEARNING_RATE = Section(
    "Learning-rate schedule: linear warm-up, then steps or a cosine decay.",
    {
        "type": Field(
            "step",
            "'step': levels at steps; 'cosine': cosine decay to 0 at train.total_steps.",
            choices=("step", "cosine"),
        ),
        "warmup_learning_rate": Field(
            0.0067,
            "Learning rate at step 0; rises linearly to init_learning_rate.",
            check=NON_NEGATIVE,
        ),
        "warmup_steps": Field(500, "Length of the linear warm-up in steps.", check=NON_NEGATIVE),
        "init_learning_rate": Field(
            0.08, "Learning rate at the end of the warm-up.", check=NON_NEGATIVE
        ),
        "learning_rate_levels": Field(
            [0.008, 0.0008],
            "Step schedule: rates that take over at the matching learning_rate_steps.",
            check=NON_NEGATIVE_ITEMS,
        ),
        "learning_rate_steps": Field(
            [15000, 20000],
            "Step schedule: global steps at which learning_rate_levels take over.",
            check=NON_NEGATIVE_ITEMS,
        ),
    },
)

_CHECKPOINT = Section(
    "Warm start from a checkpoint (e.g. ImageNet backbone weights).",
    {
        "path": Field("", "Checkpoint file or directory to initialise from; '' to start fresh."),
        "prefix": Field(
            "",
            "Scope prepended to the checkpoint's names to find our variables, e.g. 'resnet101/'.",
        ),
        "skip_variables_regex": Field(
            "",
            "Variables whose names match this regex are not restored; '' skips none.",
            check=REGEX,
        ),
    },
)

_PRE_PARSER_DATASET = Section(
    "Second input of the ancestor's copy-paste augmentation (not implemented).",
    {
        "dataset_type": Field("tfrecord", "Format of the copy-paste source.", frozen=True),
        "file_pattern": Field("", "Files of the copy-paste source.", frozen=True),
    },
)

LOSS_SCALE_TYPES = ("dynamic", "fixed", "none")

# Loss scaling for fp16 arithmetic: Ascend precision modes that allow fp16 and GPU
# --precision=mixed. A null init_loss_scale means 2**32 on Ascend (whose float status
# check detects overflow) and 2**15 on GPUs; 'fixed' needs a value.
_LOSS_SCALE = Section(
    "Loss scaling for fp16 arithmetic; fp32 runs ignore it.",
    {
        "type": Field(
            "dynamic",
            "'dynamic' adapts the scale, 'fixed' keeps init_loss_scale, 'none' turns scaling off.",
            choices=LOSS_SCALE_TYPES,
        ),
        "init_loss_scale": Field(
            None,
            "Starting (dynamic) or constant (fixed) scale; null: 2**32 on Ascend, 2**15 on GPUs.",
            type=float,
            check=POSITIVE,
        ),
        "incr_every_n_steps": Field(
            1000, "Dynamic: steps without overflow before the scale doubles.", check=POSITIVE
        ),
        "decr_every_n_nan_or_inf": Field(
            2,
            "Dynamic, Ascend: overflowing steps before the scale shrinks (GPUs shrink on each).",
            check=POSITIVE,
        ),
        "decr_ratio": Field(
            0.5,
            "Dynamic: factor applied to the scale on overflow (GPUs grow by its inverse).",
            check=Check(lambda v: 0.0 < v < 1.0, "a value in (0, 1)"),
        ),
    },
)

TRAIN = Section(
    "Training.",
    {
        "iterations_per_loop": Field(
            100, "Steps run on the device per host round trip (session.run).", check=POSITIVE
        ),
        "train_batch_size": Field(
            64, "Images per training step summed over all devices.", check=POSITIVE
        ),
        "total_steps": Field(22500, "Number of training steps.", check=POSITIVE),
        "num_cores_per_replica": Field(
            None, "TPU model parallelism; no effect here.", type=int, inert=True
        ),
        "input_partition_dims": Field(
            None, "TPU spatial partitioning; no effect here.", type=ListOf(int), inert=True
        ),
        "num_shards": Field(
            None,
            "TPU core count the ancestor's main records; no effect here.",
            type=int,
            inert=True,
        ),
        "optimizer": _OPTIMIZER,
        "learning_rate": _LEARNING_RATE,
        "checkpoint": _CHECKPOINT,
        "frozen_variable_prefix": Field(
            None,
            "Regex; trainable variables whose names match it are not updated; null freezes none.",
            type=str,
            check=REGEX,
        ),
        "train_file_pattern": Field("", "Glob of the training TFRecord files."),
        "train_dataset_type": Field(
            "tfrecord", "Format of the training files.", choices=("tfrecord",)
        ),
        "transpose_input": Field(True, "TPU input layout trick; no effect here.", inert=True),
        "regularization_variable_regex": Field(
            REGULARIZATION_VARIABLE_REGEX,
            "Variables whose names match get the L2 penalty.",
            check=REGEX,
        ),
        "l2_weight_decay": Field(
            0.0001, "L2 weight: loss += l2_weight_decay * sum(w**2) / 2.", check=NON_NEGATIVE
        ),
        "gradient_clip_norm": Field(
            0.0, "Clip gradients to this global norm; 0 disables clipping.", check=NON_NEGATIVE
        ),
        "space_to_depth_block_size": Field(
            1, "TPU stem space-to-depth block size; only 1 (off) is implemented.", frozen=True
        ),
        "pre_parser_dataset": _PRE_PARSER_DATASET,
        # Not in the ancestor (its TPU executor fixed them); added for the Estimator run config.
        "keep_checkpoint_max": Field(5, "Newest checkpoints kept in model_dir.", check=POSITIVE),
        "seed": Field(
            None,
            "Graph-level random seed; null leaves runs unseeded.",
            type=int,
            check=NON_NEGATIVE,
        ),
        "loss_scale": _LOSS_SCALE,
        # Parser augmentation stays random unless the parser section switches it off.
        "deterministic_input": Field(
            False, "Read training data in a fixed order without shuffling (reproducible runs)."
        ),
    },
)

EVAL = Section(
    "Evaluation.",
    {
        "eval_batch_size": Field(8, "Images per evaluation step.", check=POSITIVE),
        "eval_samples": Field(
            None,
            "Images to evaluate; null reads the eval files once to the end.",
            type=int,
            check=POSITIVE,
        ),
        "min_eval_interval": Field(
            180, "Eval mode: seconds between looks for a new checkpoint.", check=NON_NEGATIVE
        ),
        "eval_timeout": Field(
            None,
            "Eval mode: stop after this many seconds without a new checkpoint; null waits forever.",
            type=int,
            check=NON_NEGATIVE,
        ),
        "num_steps_per_eval": Field(
            1000, "train_and_eval mode: training steps between evaluations.", check=POSITIVE
        ),
        "type": Field(
            "box",
            "COCO metrics to compute: 'box', or 'box_and_mask' (needs include_mask).",
            choices=("box", "box_and_mask"),
        ),
        "use_json_file": Field(
            True, "Read ground truth from val_json_file; false builds it from the eval files."
        ),
        "val_json_file": Field(
            "", "COCO annotation file of the eval set; '' builds ground truth from the eval files."
        ),
        "eval_file_pattern": Field("", "Glob of the evaluation TFRecord files."),
        "eval_dataset_type": Field(
            "tfrecord", "Format of the evaluation files.", choices=("tfrecord",)
        ),
        "per_category_metrics": Field(False, "Also report AP for every category."),
        "skip_eval_loss": Field(
            False, "TPU executor option to skip eval losses; no effect here.", inert=True
        ),
    },
)

PREDICT = Section(
    "Prediction.",
    {"predict_batch_size": Field(8, "Images per prediction step.", check=POSITIVE)},
)

BATCH_NORM_ACTIVATION = Section(
    "Batch normalisation and activation used by backbone, neck and heads.",
    {
        "batch_norm_momentum": Field(
            0.997, "Decay of the moving mean and variance.", check=FRACTION
        ),
        "batch_norm_epsilon": Field(1e-4, "Added to the variance before dividing.", check=POSITIVE),
        "batch_norm_trainable": Field(True, "Whether gamma and beta are trained."),
        "use_sync_bn": Field(False, "Compute batch statistics across all devices."),
        "activation": Field("relu", "Activation function.", choices=("relu", "swish")),
    },
)

DROPBLOCK = Section(
    "The ancestor's DropBlock regulariser (not implemented).",
    {
        "dropblock_keep_prob": Field(
            None, "DropBlock keep probability; must stay null.", type=float, frozen=True
        ),
        "dropblock_size": Field(
            None, "DropBlock block size; must stay null.", type=int, frozen=True
        ),
    },
)

RESNET = Section(
    "ResNet backbone (architecture.backbone: resnet).",
    {
        "resnet_depth": Field(50, "Number of layers.", choices=RESNET_DEPTHS),
        "init_drop_connect_rate": Field(
            None,
            "Stochastic depth: drop rate of the last block (scaled down for earlier ones); "
            "null disables.",
            type=float,
            check=DROP_RATE,
        ),
    },
)

SPINENET = Section(
    "SpineNet backbone (architecture.backbone: spinenet).",
    {
        "model_id": Field(
            "49",
            "Scale of the network; letters are case-insensitive ('49s' reads as '49S').",
            choices=SPINENET_MODEL_IDS,
            normalize=str.upper,
        ),
        "init_drop_connect_rate": Field(
            None,
            "Stochastic depth: drop rate of the last block (scaled down for earlier ones); "
            "null disables.",
            type=float,
            check=DROP_RATE,
        ),
        "use_native_resize_op": Field(
            False, "Upsample with tf.image nearest-neighbour resize instead of broadcasting."
        ),
        # Older ancestor files describe the scale by these four numbers instead
        # of model_id; when given, they replace the values model_id implies.
        "endpoints_num_filters": Field(
            None, "Overrides model_id's filters of the output levels.", type=int, check=POSITIVE
        ),
        "filter_size_scale": Field(
            None, "Overrides model_id's filter-count multiplier.", type=float, check=POSITIVE
        ),
        "resample_alpha": Field(
            None, "Overrides model_id's resampling filter ratio.", type=float, check=POSITIVE
        ),
        "block_repeats": Field(
            None, "Overrides model_id's repeats per block.", type=int, check=POSITIVE
        ),
    },
)

SPINENET_MBCONV = Section(
    "The ancestor's mobile SpineNet (not implemented; accepted so its files load).",
    {
        "model_id": Field("49", "Scale of the mobile network; no effect here.", inert=True),
        "se_ratio": Field(0.2, "Squeeze-and-excitation ratio; no effect here.", inert=True),
        "init_drop_connect_rate": Field(
            None, "Stochastic depth rate; no effect here.", type=float, inert=True
        ),
        "use_native_resize_op": Field(False, "Resize implementation; no effect here.", inert=True),
    },
)

PLATFORM = Section(
    "TPU addresses the ancestor's main records (no effect here).",
    {
        "eval_master": Field(None, "TPU eval master; no effect here.", type=str, inert=True),
        "tpu": Field(None, "TPU name; no effect here.", type=str, inert=True),
        "tpu_zone": Field(None, "TPU zone; no effect here.", type=str, inert=True),
        "gcp_project": Field(None, "GCP project; no effect here.", type=str, inert=True),
    },
)

ARCHITECTURE = Section(
    "Model assembly.",
    {
        "min_level": Field(
            3, "Lowest feature level (stride 2**min_level) of neck, heads, anchors."
        ),
        "max_level": Field(7, "Highest feature level."),
        "use_bfloat16": Field(
            True,
            "TPU bfloat16 activations; no effect here (precision is an executor flag).",
            inert=True,
        ),
        "space_to_depth_block_size": Field(
            1, "TPU stem space-to-depth block size; only 1 (off) is implemented.", frozen=True
        ),
        "pre_parser": Field(
            None, "The ancestor's copy-paste pre-parser; must stay null.", type=str, frozen=True
        ),
    },
)

BASE = Section(
    "Configuration shared by all models.",
    {
        "model_dir": Field("", "Directory for checkpoints, summaries and params.yaml."),
        "use_tpu": Field(True, "The ancestor's TPU switch; no effect here.", inert=True),
        "isolate_session_state": Field(False, "TPU session isolation; no effect here.", inert=True),
        "tpu_job_name": Field(None, "TPU job name; no effect here.", type=str, inert=True),
        "platform": PLATFORM,
        "architecture": ARCHITECTURE,
        "train": TRAIN,
        "eval": EVAL,
        "predict": PREDICT,
        "batch_norm_activation": BATCH_NORM_ACTIVATION,
        "dropblock": DROPBLOCK,
        "resnet": RESNET,
        "spinenet": SPINENET,
        "spinenet_mbconv": SPINENET_MBCONV,
        "enable_summary": Field(False, "Write extra training summaries (images, histograms)."),
    },
)
