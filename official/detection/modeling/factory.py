"""Maps a resolved config onto model components: the only modeling module that
reads config. One builder per component; one table per kind of choice."""

import functools

from official.detection.modeling import (
    learning_rates,
    maskrcnn_model,
    optimizers,
    retinanet_model,
)
from official.detection.modeling.backbones import resnet, spinenet
from official.detection.modeling.heads import fast_rcnn_head, mask_head, retinanet_head, rpn_head
from official.detection.modeling.losses import rcnn_losses, retinanet_losses
from official.detection.modeling.necks import fpn
from official.detection.ops import postprocess, proposals, roi_sampling


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
        convention=params.architecture.box_convention,
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
    return functools.partial(_build_optimizer, optimizer_type=opt.type, momentum=opt.momentum)


def _build_optimizer(learning_rate, *, optimizer_type, momentum):
    return optimizers.build_optimizer(optimizer_type, learning_rate, momentum=momentum)


def build_training_kwargs(
    params,
    *,
    optimizer_wrapper=None,
    training_hooks_fn=None,
    compiled_device=False,
):
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
        finite_check_on_host=not compiled_device,
    )


def build_retinanet(params, compiled_device=False, **training):
    return retinanet_model.RetinaNet(
        backbone=build_backbone(params),
        neck=build_neck(params),
        head=build_retinanet_head(params),
        loss_fn=build_retinanet_loss_fn(params),
        detection_fn=build_retinanet_detection_fn(params),
        **build_training_kwargs(params, compiled_device=compiled_device, **training),
    )


def _head_kwargs(params, section):
    return dict(
        use_separable_conv=section.use_separable_conv,
        activation=params.batch_norm_activation.activation,
        use_batch_norm=section.use_batch_norm,
        **_batch_norm_kwargs(params),
    )


def build_rpn_head(params):
    head = params.rpn_head
    return rpn_head.RPNHead(
        params.architecture.min_level,
        params.architecture.max_level,
        anchors_per_location(params),
        head.num_convs,
        head.num_filters,
        **_head_kwargs(params, head),
    )


def build_fast_rcnn_head(params):
    head = params.frcnn_head
    return fast_rcnn_head.FastRCNNHead(
        params.architecture.num_classes,
        head.num_convs,
        head.num_filters,
        head.num_fcs,
        head.fc_dims,
        class_agnostic_bbox_pred=head.class_agnostic_bbox_pred,
        **_head_kwargs(params, head),
    )


def build_mask_head(params, compiled_device=False):
    """The mask head, or None for Faster R-CNN; `compiled_device` (Ascend) computes every RoI."""
    if not params.architecture.include_mask:
        return None
    head = params.mrcnn_head
    return mask_head.MaskHead(
        params.architecture.num_classes,
        params.architecture.mask_target_size,
        head.num_convs,
        head.num_filters,
        only_foreground_rois=head.only_foreground_rois and not compiled_device,
        **_head_kwargs(params, head),
    )


def build_proposal_fns(params):
    """(training, evaluation) proposal functions with their top-k settings bound."""
    rp = params.roi_proposal
    train = functools.partial(
        proposals.generate_proposals,
        pre_nms_top_k=rp.rpn_pre_nms_top_k,
        post_nms_top_k=rp.rpn_post_nms_top_k,
        nms_iou_threshold=rp.rpn_nms_threshold,
        score_threshold=rp.rpn_score_threshold,
        min_size_threshold=rp.rpn_min_size_threshold,
        convention=params.architecture.box_convention,
    )
    evaluation = functools.partial(
        proposals.generate_proposals,
        pre_nms_top_k=rp.test_rpn_pre_nms_top_k,
        post_nms_top_k=rp.test_rpn_post_nms_top_k,
        nms_iou_threshold=rp.test_rpn_nms_threshold,
        score_threshold=rp.test_rpn_score_threshold,
        min_size_threshold=rp.test_rpn_min_size_threshold,
        convention=params.architecture.box_convention,
    )
    return train, evaluation


def build_roi_sampler_fn(params):
    rs = params.roi_sampling
    return functools.partial(
        roi_sampling.sample_rois,
        num_samples_per_image=rs.num_samples_per_image,
        fg_fraction=rs.fg_fraction,
        fg_iou_thresh=rs.fg_iou_thresh,
        bg_iou_thresh_hi=rs.bg_iou_thresh_hi,
        bg_iou_thresh_lo=rs.bg_iou_thresh_lo,
        mix_gt_boxes=rs.mix_gt_boxes,
        convention=params.architecture.box_convention,
    )


def build_rcnn_loss_fn(params):
    return functools.partial(
        rcnn_losses.maskrcnn_losses,
        rpn_batch_size_per_im=params.rpn_score_loss.rpn_batch_size_per_im,
        rpn_huber_loss_delta=params.rpn_box_loss.huber_loss_delta,
        frcnn_huber_loss_delta=params.frcnn_box_loss.huber_loss_delta,
        class_agnostic_bbox_pred=params.frcnn_head.class_agnostic_bbox_pred,
    )


def build_rcnn_detection_fn(params):
    post = params.postprocess
    return functools.partial(
        postprocess.generate_detections_from_rcnn,
        max_total_size=post.max_total_size,
        nms_iou_threshold=post.nms_iou_threshold,
        score_threshold=post.score_threshold,
        pre_nms_num_boxes=post.pre_nms_num_boxes,
        convention=params.architecture.box_convention,
    )


def build_maskrcnn(params, compiled_device=False, **training):
    train_proposal_fn, eval_proposal_fn = build_proposal_fns(params)
    return maskrcnn_model.MaskRCNN(
        backbone=build_backbone(params),
        neck=build_neck(params),
        rpn_head=build_rpn_head(params),
        fast_rcnn_head=build_fast_rcnn_head(params),
        mask_head=build_mask_head(params, compiled_device),
        train_proposal_fn=train_proposal_fn,
        eval_proposal_fn=eval_proposal_fn,
        roi_sampler_fn=build_roi_sampler_fn(params),
        loss_fn=build_rcnn_loss_fn(params),
        detection_fn=build_rcnn_detection_fn(params),
        num_mask_samples_per_image=params.mask_sampling.num_mask_samples_per_image,
        mask_target_size=params.architecture.mask_target_size,
        **build_training_kwargs(params, compiled_device=compiled_device, **training),
    )


# Builders by the config's `type`. The model names (--model) are configs/factory.MODELS;
# faster_rcnn is a mask_rcnn type without the mask head.
MODEL_TYPES = {"retinanet": build_retinanet, "mask_rcnn": build_maskrcnn}


def build_model(
    params,
    *,
    optimizer_wrapper=None,
    training_hooks_fn=None,
    compiled_device=False,
):
    """Builds the model named by the config's `type`.

    `compiled_device` asks for a graph that a device compiles ahead of time
    (Ascend): every tensor shape known when it is built, so shape-changing savings
    such as `mrcnn_head.only_foreground_rois` are off, and no Python callbacks, so
    the non-finite loss check is a graph assertion.
    """
    builder = _lookup(MODEL_TYPES, params.type, "model type")
    return builder(
        params,
        compiled_device=compiled_device,
        optimizer_wrapper=optimizer_wrapper,
        training_hooks_fn=training_hooks_fn,
    )
