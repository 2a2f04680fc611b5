"""Maps a resolved config onto model components: the only modeling module that
reads config. One builder per component; one table per kind of choice."""

import functools

from official.detection.modeling import learning_rates, optimizers, retinanet_model
from official.detection.modeling.backbones import resnet, spinenet
from official.detection.modeling.heads import retinanet_head
from official.detection.modeling.losses import retinanet_losses
from official.detection.modeling.necks import fpn
from official.detection.ops import postprocess


def _lookup(table, key, what):
    if key not in table:
        raise ValueError(f"unknown {what} {key!r}; valid: {sorted(table)}")
    return table[key]


def _batch_norm_kwargs(params):
    bn = params.batch_norm_activation
    return dict(
        batch_norm_momentum=bn.batch_norm_momentum,
        batch_norm_epsilon=bn.batch_norm_epsilon,
    )


def anchors_per_location(params):
    return params.anchor.num_scales * len(params.anchor.aspect_ratios)


def build_resnet(params):
    bn = params.batch_norm_activation
    return resnet.ResNet(
        params.resnet.resnet_depth,
        activation=bn.activation,
        batch_norm_trainable=bn.batch_norm_trainable,
        use_sync_bn=bn.use_sync_bn,
        init_drop_connect_rate=params.resnet.init_drop_connect_rate,
        **_batch_norm_kwargs(params),
    )


def build_spinenet(params):
    bn = params.batch_norm_activation
    sp = params.spinenet
    return spinenet.SpineNet(
        sp.model_id,
        min_level=params.architecture.min_level,
        max_level=params.architecture.max_level,
        endpoints_num_filters=sp.endpoints_num_filters,
        resample_alpha=sp.resample_alpha,
        block_repeats=sp.block_repeats,
        filter_size_scale=sp.filter_size_scale,
        activation=bn.activation,
        batch_norm_trainable=bn.batch_norm_trainable,
        use_sync_bn=bn.use_sync_bn,
        init_drop_connect_rate=sp.init_drop_connect_rate,
        use_native_resize_op=sp.use_native_resize_op,
        **_batch_norm_kwargs(params),
    )


BACKBONES = {"resnet": build_resnet, "spinenet": build_spinenet}


def build_backbone(params):
    return _lookup(BACKBONES, params.architecture.backbone, "architecture.backbone")(params)


def build_fpn(params):
    # The activation before P7 is ReLU whatever batch_norm_activation says, as in
    # the checkpoints this code base loads; the head takes the configured one.
    return fpn.FPN(
        params.architecture.min_level,
        params.architecture.max_level,
        params.fpn.fpn_feat_dims,
        use_separable_conv=params.fpn.use_separable_conv,
        use_batch_norm=params.fpn.use_batch_norm,
        **_batch_norm_kwargs(params),
    )


def build_identity_neck(params):
    return fpn.IdentityNeck(params.architecture.min_level, params.architecture.max_level)


NECKS = {"fpn": build_fpn, "identity": build_identity_neck}


def build_neck(params):
    kind = params.architecture.multilevel_features
    return _lookup(NECKS, kind, "architecture.multilevel_features")(params)


def build_retinanet_head(params):
    head = params.retinanet_head
    return retinanet_head.RetinaNetHead(
        params.architecture.min_level,
        params.architecture.max_level,
        params.architecture.num_classes,
        anchors_per_location(params),
        head.num_convs,
        head.num_filters,
        use_separable_conv=head.use_separable_conv,
        activation=params.batch_norm_activation.activation,
        use_batch_norm=head.use_batch_norm,
        **_batch_norm_kwargs(params),
    )


def build_retinanet_loss_fn(params):
    loss = params.retinanet_loss
    return functools.partial(
        retinanet_losses.retinanet_losses,
        num_classes=params.architecture.num_classes,
        alpha=loss.focal_loss_alpha,
        gamma=loss.focal_loss_gamma,
        delta=loss.huber_loss_delta,
        box_loss_weight=loss.box_loss_weight,
    )


def build_retinanet_detection_fn(params):
    post = params.postprocess
    return functools.partial(
        postprocess.generate_detections,
        num_classes=params.architecture.num_classes,
        max_total_size=post.max_total_size,
        nms_iou_threshold=post.nms_iou_threshold,
        score_threshold=post.score_threshold,
        pre_nms_num_boxes=post.pre_nms_num_boxes,
    )


def build_learning_rate_fn(params):
    lr = params.train.learning_rate
    common = dict(
        init_learning_rate=lr.init_learning_rate,
        warmup_learning_rate=lr.warmup_learning_rate,
        warmup_steps=lr.warmup_steps,
    )
    if lr.type == "step":
        return learning_rates.build_learning_rate_fn(
            "step",
            learning_rate_levels=list(lr.learning_rate_levels),
            learning_rate_steps=list(lr.learning_rate_steps),
            **common,
        )
    return learning_rates.build_learning_rate_fn(
        lr.type, total_steps=params.train.total_steps, **common
    )


def build_optimizer_fn(params):
    opt = params.train.optimizer
    return functools.partial(
        _build_optimizer, optimizer_type=opt.type, momentum=opt.get("momentum", 0.9)
    )


def _build_optimizer(learning_rate, *, optimizer_type, momentum):
    return optimizers.build_optimizer(optimizer_type, learning_rate, momentum=momentum)


def build_training_kwargs(params, *, optimizer_wrapper=None, training_hooks_fn=None):
    """Keyword arguments of BaseModel from the `train` section."""
    train = params.train
    return dict(
        optimizer_fn=build_optimizer_fn(params),
        learning_rate_fn=build_learning_rate_fn(params),
        l2_weight_decay=train.l2_weight_decay,
        gradient_clip_norm=train.gradient_clip_norm,
        frozen_variable_prefix=train.frozen_variable_prefix or "",
        regularization_variable_regex=train.regularization_variable_regex,
        checkpoint_path=train.checkpoint.path,
        checkpoint_prefix=train.checkpoint.prefix,
        skip_variables_regex=train.checkpoint.skip_variables_regex,
        enable_summary=params.enable_summary,
        optimizer_wrapper=optimizer_wrapper,
        training_hooks_fn=training_hooks_fn,
    )


def build_retinanet(params, **training):
    return retinanet_model.RetinaNet(
        backbone=build_backbone(params),
        neck=build_neck(params),
        head=build_retinanet_head(params),
        loss_fn=build_retinanet_loss_fn(params),
        detection_fn=build_retinanet_detection_fn(params),
        **build_training_kwargs(params, **training),
    )


MODELS = {"retinanet": build_retinanet}


def build_model(params, *, optimizer_wrapper=None, training_hooks_fn=None):
    """Builds the model named by the config's `type`."""
    builder = _lookup(MODELS, params.type, "model type")
    return builder(params, optimizer_wrapper=optimizer_wrapper, training_hooks_fn=training_hooks_fn)
