"""Tests for the mask head, including its equivalence with the ancestor's formulation."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from official.detection.modeling.heads import mask_head
from official.detection.testing import reference_variables as refs


def _names_and_shapes(variables):
    return refs.select_scope(refs.graph_variables(variables), "mask_head/")


def _variables():
    return {v.op.name.split("/", 1)[1]: v for v in tf.global_variables()}


def _ancestor_masks(roi_features, class_indices, w, *, num_convs, batch_norm=False):
    """The ancestor's computation on the head's variables `w`: convs, conv2d_transpose,
    a 1x1 conv to every class, then the channel of each RoI's class."""
    batch_size, num_rois, size, _, channels = roi_features.get_shape().as_list()
    net = tf.reshape(roi_features, [-1, size, size, channels])

    def normalize_and_activate(net):
        if batch_norm:
            mean, variance = tf.nn.moments(net, axes=[0, 1, 2])
            net = tf.nn.batch_normalization(net, mean, variance, None, None, 1e-4)
        return tf.nn.relu(net)

    for i in range(num_convs):
        net = tf.nn.conv2d(net, w[f"mask-conv-l{i}/kernel"], [1, 1, 1, 1], "SAME")
        net = normalize_and_activate(net + w[f"mask-conv-l{i}/bias"])
    kernel = w["conv5-mask/kernel"]
    filters = kernel.shape.as_list()[2]
    net = tf.nn.conv2d_transpose(
        net, kernel, [batch_size * num_rois, 2 * size, 2 * size, filters], [1, 2, 2, 1], "VALID"
    )
    net = normalize_and_activate(net + w["conv5-mask/bias"])
    logits = tf.nn.conv2d(net, w["mask_fcn_logits/kernel"], [1, 1, 1, 1], "VALID")
    logits = tf.reshape(
        logits + w["mask_fcn_logits/bias"], [batch_size, num_rois, 2 * size, 2 * size, -1]
    )
    # [B, R, K, 2S, 2S], then the class channel of every RoI.
    logits = tf.transpose(logits, [0, 1, 4, 2, 3])
    grid = np.stack(np.meshgrid(range(batch_size), range(num_rois), indexing="ij"), axis=-1)
    return tf.gather_nd(logits, tf.concat([grid, class_indices[..., tf.newaxis]], axis=-1))


def _build(head_kwargs, shape, num_classes, seed, is_training=False):
    """Builds a head on random features and random variable values."""
    rng = np.random.RandomState(seed)
    roi_features = tf.constant(rng.randn(*shape).astype(np.float32))
    class_indices = tf.constant(rng.randint(0, num_classes, size=shape[:2]).astype(np.int32))
    head = mask_head.MaskHead(num_classes, 2 * shape[2], **head_kwargs)
    masks = head(roi_features, class_indices, is_training=is_training)
    variables = _variables()
    init = [
        v.assign(rng.randn(*v.shape.as_list()).astype(np.float32) * 0.3)
        for name, v in variables.items()
        if "moving" not in name
    ]
    return roi_features, class_indices, masks, variables, init


def test_variables_match_ancestor():
    ref_trainable, ref_global = refs.load_reference_variables("maskrcnn_r50")
    with tf.Graph().as_default():
        # Mask R-CNN R50-FPN: 128 mask RoIs per image, 14x14x256 RoIAlign features.
        masks = mask_head.MaskHead(91)(
            tf.placeholder(tf.float32, [2, 128, 14, 14, 256]),
            tf.placeholder(tf.int32, [2, 128]),
            is_training=True,
        )
        trainable = _names_and_shapes(tf.trainable_variables())
        global_vars = _names_and_shapes(tf.global_variables())
    assert masks.shape.as_list() == [2, 128, 28, 28]
    assert trainable == refs.select_scope(ref_trainable, "mask_head/")
    assert global_vars == refs.select_scope(ref_global, "mask_head/")
    assert sum(refs.count_parameters(shape) for _, shape in trainable) == 2_646_107


@pytest.mark.parametrize("only_foreground_rois", [False, True])
def test_dynamic_batch_size(only_foreground_rois):
    with tf.Graph().as_default(), tf.Session() as session:
        roi_features = tf.placeholder(tf.float32, [None, 3, 2, 2, 4])
        class_indices = tf.placeholder(tf.int32, [None, 3])
        head = mask_head.MaskHead(
            5, 4, num_convs=1, num_filters=2, only_foreground_rois=only_foreground_rois
        )
        masks = head(roi_features, class_indices)
        session.run(tf.global_variables_initializer())
        got = session.run(
            masks, {roi_features: np.ones([2, 3, 2, 2, 4]), class_indices: [[1, 2, 0], [4, 0, 3]]}
        )
    assert masks.shape.as_list() == [None, 3, 4, 4]
    assert got.shape == (2, 3, 4, 4)


def test_deconv_as_matmul_equals_conv2d_transpose():
    rng = np.random.RandomState(0)
    with tf.Graph().as_default(), tf.Session() as session:
        features = tf.constant(rng.randn(3, 4, 5, 6).astype(np.float32))
        kernel = tf.constant(rng.randn(2, 2, 7, 6).astype(np.float32))
        reference = tf.nn.conv2d_transpose(features, kernel, [3, 8, 10, 7], [1, 2, 2, 1], "VALID")
        sub_pixels = mask_head.deconv_2x2_as_matmul(features, kernel)
        # [N, H, W, 4, F] with sub-pixel 2a + b -> rows 2i + a, columns 2j + b.
        image = tf.reshape(
            tf.transpose(tf.reshape(sub_pixels, [3, 4, 5, 2, 2, 7]), [0, 1, 3, 2, 4, 5]),
            [3, 8, 10, 7],
        )
        expected, got, got_sub_pixels = session.run([reference, image, sub_pixels])
    assert got_sub_pixels.shape == (3, 4, 5, 4, 7)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_convs", [0, 2])
def test_outputs_and_gradients_equal_the_ancestors_formulation(num_convs):
    with tf.Graph().as_default(), tf.Session() as session:
        roi_features, class_indices, masks, variables, init = _build(
            {"num_convs": num_convs, "num_filters": 8}, [2, 3, 4, 4, 5], 6, seed=num_convs
        )
        expected = _ancestor_masks(roi_features, class_indices, variables, num_convs=num_convs)
        weights = tf.constant(np.random.RandomState(9).randn(2, 3, 8, 8).astype(np.float32))
        sources = [roi_features] + list(variables.values())
        grads = tf.gradients(tf.reduce_sum(masks * weights), sources)
        expected_grads = tf.gradients(tf.reduce_sum(expected * weights), sources)
        session.run(init)
        got, want, got_grads, want_grads = session.run([masks, expected, grads, expected_grads])
    assert got.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    for got_grad, want_grad in zip(got_grads, want_grads):
        np.testing.assert_allclose(got_grad, want_grad, rtol=1e-4, atol=1e-3)


def test_batch_norm_statistics_span_all_upsampled_pixels():
    with tf.Graph().as_default(), tf.Session() as session:
        roi_features, class_indices, masks, variables, init = _build(
            {"num_convs": 1, "num_filters": 4, "use_batch_norm": True},
            [1, 3, 3, 3, 2],
            4,
            seed=3,
            is_training=True,
        )
        trainable = {name: v for name, v in variables.items() if "batch_normalization" not in name}
        session.run(tf.global_variables_initializer())
        session.run(init)
        # gamma 1 and beta 0 make the head's batch norm a plain standardisation.
        session.run(
            [
                v.assign(tf.ones_like(v) if name.endswith("gamma") else tf.zeros_like(v))
                for name, v in variables.items()
                if name.endswith(("gamma", "beta"))
            ]
        )
        expected = _ancestor_masks(
            roi_features, class_indices, trainable, num_convs=1, batch_norm=True
        )
        got, want = session.run([masks, expected])
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


def test_each_roi_gets_the_logits_of_its_class():
    class_ids = np.array([[0, 3, 1, 4], [2, 2, 4, 0]], np.int32)
    with tf.Graph().as_default(), tf.Session() as session:
        head = mask_head.MaskHead(5, 4, num_convs=1, num_filters=3)
        masks = head(tf.random_normal([2, 4, 2, 2, 3]), tf.constant(class_ids))
        session.run(tf.global_variables_initializer())
        variables = _variables()
        # A zero logits kernel leaves the bias: class k's logits are all k + 0.5.
        session.run(
            [
                variables["mask_fcn_logits/kernel"].assign(tf.zeros([1, 1, 3, 5])),
                variables["mask_fcn_logits/bias"].assign(tf.range(5, dtype=tf.float32) + 0.5),
            ]
        )
        got = session.run(masks)
    np.testing.assert_array_equal(got, np.broadcast_to(class_ids[..., None, None] + 0.5, got.shape))


def test_class_ids_outside_the_range_get_zero_logits():
    with tf.Graph().as_default(), tf.Session() as session:
        head = mask_head.MaskHead(3, 4, num_convs=0)
        masks = head(tf.random_normal([1, 2, 2, 2, 3]), tf.constant([[3, -1]]))
        session.run(tf.global_variables_initializer())
        session.run(_variables()["mask_fcn_logits/bias"].assign([1.0, 2.0, 3.0]))
        np.testing.assert_array_equal(session.run(masks), np.zeros([1, 2, 4, 4]))


@pytest.mark.parametrize("use_batch_norm", [False, True])
def test_only_foreground_rois_keeps_their_logits_and_gradients(use_batch_norm):
    class_ids = np.array([[2, 0, 1], [0, 0, 3]], np.int32)
    rng = np.random.RandomState(5)
    features = rng.randn(2, 3, 4, 4, 3).astype(np.float32)
    targets = (rng.rand(2, 3, 8, 8) > 0.5).astype(np.float32)
    results = []
    for only_foreground in (False, True):
        with tf.Graph().as_default(), tf.Session() as session:
            roi_features = tf.constant(features)
            head = mask_head.MaskHead(
                4,
                8,
                num_convs=1,
                num_filters=4,
                use_batch_norm=use_batch_norm,
                only_foreground_rois=only_foreground,
            )
            masks = head(roi_features, tf.constant(class_ids), is_training=False)
            foreground = tf.constant((class_ids > 0).astype(np.float32))[..., None, None]
            loss = tf.reduce_sum(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=masks) * foreground
            )
            grads = tf.gradients(loss, [roi_features] + tf.trainable_variables())
            # The same weights in both graphs (op seeds depend on graph construction).
            values = np.random.RandomState(7)
            for variable in tf.global_variables():
                value = values.randn(*variable.shape.as_list()).astype(np.float32)
                if "variance" in variable.name:
                    value = 0.5 + np.abs(value)
                variable.load(value, session)
            results.append(session.run([masks, loss, grads]))
    (all_masks, all_loss, all_grads), (fg_masks, fg_loss, fg_grads) = results
    foreground = class_ids > 0
    np.testing.assert_allclose(fg_masks[foreground], all_masks[foreground], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(fg_masks[~foreground], 0.0)
    np.testing.assert_allclose(fg_loss, all_loss, rtol=1e-5)
    for got, want in zip(fg_grads, all_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_only_foreground_rois_with_batch_norm_in_training_computes_every_roi():
    with tf.Graph().as_default() as graph:
        head = mask_head.MaskHead(
            3, 4, num_convs=1, num_filters=2, use_batch_norm=True, only_foreground_rois=True
        )
        head(tf.zeros([1, 2, 2, 2, 2]), tf.constant([[0, 1]]), is_training=True)
        op_types = {op.type for op in graph.get_operations()}
    assert "ScatterNd" not in op_types


def test_only_foreground_rois_without_any():
    with tf.Graph().as_default(), tf.Session() as session:
        head = mask_head.MaskHead(3, 4, num_convs=1, num_filters=2, only_foreground_rois=True)
        roi_features = tf.random_normal([2, 2, 2, 2, 2])
        masks = head(roi_features, tf.zeros([2, 2], tf.int32))
        grad = tf.gradients(tf.reduce_sum(masks), roi_features)[0]
        session.run(tf.global_variables_initializer())
        got, got_grad = session.run([masks, grad])
    np.testing.assert_array_equal(got, np.zeros([2, 2, 4, 4]))
    np.testing.assert_array_equal(got_grad, np.zeros([2, 2, 2, 2, 2]))


def test_separable_convs_fold_the_depthwise_scale_into_the_logits():
    rng = np.random.RandomState(4)
    with tf.Graph().as_default(), tf.Session() as session:
        roi_features = tf.constant(rng.randn(1, 2, 2, 2, 3).astype(np.float32))
        class_indices = tf.constant([[1, 2]])
        head = mask_head.MaskHead(3, 4, num_convs=1, num_filters=3, use_separable_conv=True)
        masks = head(roi_features, class_indices)
        names = [name for name, _ in _names_and_shapes(tf.global_variables())]
        session.run(tf.global_variables_initializer())
        w = _variables()
        upsampled = session.graph.get_tensor_by_name("mask_head/Relu:0")
        logits = tf.nn.separable_conv2d(
            tf.reshape(upsampled, [2, 2, 2 * 4, 3]),
            w["mask_fcn_logits/depthwise_kernel"],
            w["mask_fcn_logits/pointwise_kernel"],
            [1, 1, 1, 1],
            "VALID",
        )
        got, sub_pixel_logits, bias = session.run([masks, logits, w["mask_fcn_logits/bias"]])
    assert names == [
        "mask_head/mask-conv-l0/depthwise_kernel",
        "mask_head/mask-conv-l0/pointwise_kernel",
        "mask_head/mask-conv-l0/bias",
        "mask_head/conv5-mask/kernel",
        "mask_head/conv5-mask/bias",
        "mask_head/mask_fcn_logits/depthwise_kernel",
        "mask_head/mask_fcn_logits/pointwise_kernel",
        "mask_head/mask_fcn_logits/bias",
    ]
    # Sub-pixel layout [N, S, S, (a, b)] -> image rows 2i + a, columns 2j + b.
    for roi, class_id in enumerate([1, 2]):
        sub_pixels = sub_pixel_logits[roi, :, :, class_id].reshape(2, 2, 2, 2) + bias[class_id]
        expected = sub_pixels.transpose(0, 2, 1, 3).reshape(4, 4)
        np.testing.assert_allclose(got[0, roi], expected, rtol=1e-5, atol=1e-5)


def test_batch_norm_variables_in_the_ancestors_order():
    with tf.Graph().as_default():
        head = mask_head.MaskHead(3, 4, num_convs=2, num_filters=2, use_batch_norm=True)
        head(tf.zeros([1, 2, 2, 2, 2]), tf.zeros([1, 2], tf.int32), is_training=True)
        names = [n for n, _ in _names_and_shapes(tf.trainable_variables())]
        update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    assert names == [
        f"mask_head/{layer}/{var}"
        for layer, variables in [
            ("mask-conv-l0", ("kernel", "bias")),
            ("batch_normalization", ("gamma", "beta")),
            ("mask-conv-l1", ("kernel", "bias")),
            ("batch_normalization_1", ("gamma", "beta")),
            ("conv5-mask", ("kernel", "bias")),
            ("batch_normalization_2", ("gamma", "beta")),
            ("mask_fcn_logits", ("kernel", "bias")),
        ]
        for var in variables
    ]
    assert len(update_ops) == 2 * 3


@pytest.mark.parametrize("activation, op_type", [("relu", "Relu"), ("swish", "Sigmoid")])
def test_activation_follows_convs_and_upsampling(activation, op_type):
    with tf.Graph().as_default() as graph:
        head = mask_head.MaskHead(3, 4, num_convs=2, num_filters=2, activation=activation)
        head(tf.zeros([1, 2, 2, 2, 2]), tf.zeros([1, 2], tf.int32))
        op_types = [op.type for op in graph.get_operations()]
    assert op_types.count(op_type) == 3


def test_initialisers_are_msra_fill():
    with tf.Graph().as_default(), tf.Session() as session:
        mask_head.MaskHead(91)(
            tf.zeros([1, 1, 14, 14, 256]), tf.zeros([1, 1], tf.int32), is_training=True
        )
        session.run(tf.global_variables_initializer())
        values = session.run(_variables())
    # He-normal on fan-out: stddev sqrt(2 / (k * k * filters)).
    for name, stddev in [
        ("mask-conv-l0/kernel", (2.0 / (9 * 256)) ** 0.5),
        ("conv5-mask/kernel", (2.0 / (4 * 256)) ** 0.5),
        ("mask_fcn_logits/kernel", (2.0 / 91) ** 0.5),
    ]:
        assert values[name].std() == pytest.approx(stddev, rel=0.05)
    assert not values["mask_fcn_logits/bias"].any()


@pytest.mark.parametrize(
    "roi_shape, class_shape, match",
    [
        ([2, 8, 14, 14], [2, 8], r"roi_features must be \[B, R, S, S, C\] .*got shape"),
        ([2, 8, 14, 12, 4], [2, 8], r"roi_features must be \[B, R, S, S, C\]"),
        ([2, None, 14, 14, 4], [2, 8], r"static R, S and C; got shape \[2, None, 14, 14, 4\]"),
        ([2, 8, 7, 7, 4], [2, 8], r"mask_target_size=28 must be twice the RoI feature size"),
        (
            [2, 8, 14, 14, 4],
            [2, 6],
            r"class_indices must be \[B, R\] = \[2, 8\]; got shape \[2, 6\]",
        ),
        ([2, 8, 14, 14, 4], [16], r"class_indices must be \[B, R\] = \[2, 8\]; got shape \[16\]"),
    ],
)
def test_bad_inputs_raise(roi_shape, class_shape, match):
    head = mask_head.MaskHead(91)
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match=match):
            head(tf.placeholder(tf.float32, roi_shape), tf.placeholder(tf.int32, class_shape))


def test_float_class_indices_raise():
    head = mask_head.MaskHead(91)
    with tf.Graph().as_default():
        with pytest.raises(
            TypeError, match=r"class_indices must be an integer tensor; got float32"
        ):
            head(tf.zeros([1, 2, 14, 14, 4]), tf.zeros([1, 2]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "elu"}, r"MaskHead: unknown activation 'elu'; valid: \['relu', 'swish'\]"),
        ({"num_classes": 0}, r"num_classes must be an int >= 1; got 0"),
        ({"mask_target_size": 27}, r"mask_target_size must be even .*; got 27"),
        ({"mask_target_size": 0}, r"mask_target_size must be an int >= 2; got 0"),
        ({"num_convs": -2}, r"num_convs must be an int >= 0; got -2"),
        ({"num_filters": 2.0}, r"num_filters must be an int >= 1; got 2\.0"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    args = {"num_classes": 91}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        mask_head.MaskHead(**args)
