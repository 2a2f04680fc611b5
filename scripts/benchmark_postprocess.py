r"""Times RetinaNet post-processing: this project's against the ancestor's per-class loop.

Setting (the RetinaNet evaluation defaults): 640x640 input, levels 3-7, 9 anchors per
location (76,725 anchors), 91 classes, score threshold 0.05, NMS IoU 0.5, 5,000
pre-NMS boxes, 100 detections. Logits are drawn from N(-5, 2) (about 15% of the
(anchor, class) pairs score above 0.05, an untrained-to-early model), box codes from
N(0, 0.1). Inputs live in variables so that neither feeding nor constant folding
enters the timings.

Variants:
  project       `postprocess.generate_detections`: one top-k over all (anchor, class)
                pairs, decode the winners, one class-aware NMS op.
  ancestor      the ancestor's default path: decode and squash all anchors, then per
                image and class a top-k over the anchors and
                `tf.image.non_max_suppression_padded`, then a top-k over the classes.
  ancestor_v3   the same loop with the C++ `tf.image.non_max_suppression`, to show how
                much of the ancestor's time is the padded NMS op itself.

    python scripts/benchmark_postprocess.py --iterations=5
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from official.detection.ops import anchors as anchors_lib  # noqa: E402
from official.detection.ops import box_ops, postprocess  # noqa: E402

flags.DEFINE_integer("batch_size", 2, "Images per batch.")
flags.DEFINE_integer("image_size", 640, "Square input size in pixels.")
flags.DEFINE_integer("num_classes", 91, "Classes including the background.")
flags.DEFINE_integer("pre_nms_num_boxes", 5000, "Candidates before NMS.")
flags.DEFINE_integer("iterations", 5, "Timed runs of every variant after the first.")
flags.DEFINE_float("logit_mean", -5.0, "Mean of the random class logits.")
flags.DEFINE_float("logit_std", 2.0, "Standard deviation of the random class logits.")
flags.DEFINE_integer("seed", 0, "NumPy seed of the random head outputs.")
flags.DEFINE_list(
    "variants", "project,ancestor_v3,ancestor", "Variants to time (see the docstring)."
)
FLAGS = flags.FLAGS

MIN_LEVEL, MAX_LEVEL = 3, 7
NUM_SCALES, ASPECT_RATIOS, ANCHOR_SIZE = 3, (1.0, 2.0, 0.5), 4
MAX_TOTAL_SIZE, IOU_THRESHOLD, SCORE_THRESHOLD = 100, 0.5, 0.05


def _ancestor_style(cls_outputs, box_outputs, anchor_boxes, image_info, *, num_classes, fast_nms):
    """The ancestor's per-class loop, written out for comparison (not used by the models)."""
    batch_size = FLAGS.batch_size
    logits = anchors_lib.flatten_multilevel(cls_outputs, num_classes)
    scores = tf.sigmoid(logits)[:, :, 1:]
    boxes = box_ops.decode_boxes(
        anchors_lib.flatten_multilevel(box_outputs), anchors_lib.flatten_multilevel(anchor_boxes)
    )
    boxes = box_ops.clip_boxes(boxes, image_info[:, 1:2, :])
    num_anchors = boxes.shape.as_list()[1]
    results = {k: [] for k in ("boxes", "scores", "classes", "num")}
    for b in range(batch_size):
        per_class_boxes, per_class_scores, per_class_ids = [], [], []
        for c in range(num_classes - 1):
            top_scores, top_index = tf.nn.top_k(
                scores[b, :, c], k=min(num_anchors, FLAGS.pre_nms_num_boxes)
            )
            top_boxes = tf.gather(boxes[b], top_index)
            if fast_nms:
                kept = tf.image.non_max_suppression(
                    top_boxes, top_scores, MAX_TOTAL_SIZE, IOU_THRESHOLD, SCORE_THRESHOLD
                )
                num_valid = tf.shape(kept)[0]
                kept = tf.pad(kept, [[0, MAX_TOTAL_SIZE - num_valid]])
            else:
                kept, num_valid = tf.image.non_max_suppression_padded(
                    top_boxes,
                    top_scores,
                    MAX_TOTAL_SIZE,
                    iou_threshold=IOU_THRESHOLD,
                    score_threshold=SCORE_THRESHOLD,
                    pad_to_max_output_size=True,
                )
            valid = tf.range(MAX_TOTAL_SIZE) < num_valid
            per_class_boxes.append(tf.gather(top_boxes, kept))
            per_class_scores.append(
                tf.where(valid, tf.gather(top_scores, kept), -tf.ones([MAX_TOTAL_SIZE]))
            )
            per_class_ids.append(tf.fill([MAX_TOTAL_SIZE], c + 1))
        all_scores, order = tf.nn.top_k(tf.concat(per_class_scores, 0), k=MAX_TOTAL_SIZE)
        results["scores"].append(all_scores)
        results["boxes"].append(tf.gather(tf.concat(per_class_boxes, 0), order))
        results["classes"].append(tf.gather(tf.concat(per_class_ids, 0), order))
        results["num"].append(tf.reduce_sum(tf.cast(all_scores > -1, tf.int32)))
    scale = tf.tile(image_info[:, 2, :], [1, 2])[:, tf.newaxis, :]
    return {
        "detection_boxes": tf.stack(results["boxes"]) / scale,
        "detection_scores": tf.stack(results["scores"]),
        "detection_classes": tf.stack(results["classes"]),
        "num_detections": tf.stack(results["num"]),
    }


def _time_interleaved(sess, variants, iterations):
    """First-run seconds and steady-state run times of every variant.

    Runs alternate between the variants, so that load from other processes on a shared
    machine spreads over all of them alike.
    """
    results, first, times = {}, {}, {name: [] for name in variants}
    for name, fetches in variants.items():
        start = time.perf_counter()
        # The first run includes TF's one-off set-up (e.g. instantiating functions).
        results[name] = sess.run(fetches)
        first[name] = time.perf_counter() - start
    for _ in range(iterations):
        for name, fetches in variants.items():
            start = time.perf_counter()
            sess.run(fetches)
            times[name].append(time.perf_counter() - start)
    return results, first, times


def _agreement(ours, theirs):
    """Detections (class, score, box within 1e-3 px) found in both, over all images."""
    matched = total = 0
    for b in range(ours["num_detections"].shape[0]):
        n_ours, n_theirs = int(ours["num_detections"][b]), int(theirs["num_detections"][b])
        total += max(n_ours, n_theirs)
        for i in range(n_ours):
            same = (
                (theirs["detection_classes"][b, :n_theirs] == ours["detection_classes"][b, i])
                & np.isclose(
                    theirs["detection_scores"][b, :n_theirs], ours["detection_scores"][b, i]
                )
                & np.all(
                    np.abs(theirs["detection_boxes"][b, :n_theirs] - ours["detection_boxes"][b, i])
                    < 1e-3,
                    axis=-1,
                )
            )
            matched += bool(same.any())
    return matched, total


VARIANTS = ("project", "ancestor_v3", "ancestor")


def main(_):
    unknown = sorted(set(FLAGS.variants) - set(VARIANTS))
    if unknown:
        raise app.UsageError(f"--variants: unknown {unknown}; choose from {sorted(VARIANTS)}")
    rng = np.random.RandomState(FLAGS.seed)
    size = FLAGS.image_size
    num_classes = FLAGS.num_classes
    anchors = anchors_lib.Anchors(
        MIN_LEVEL, MAX_LEVEL, NUM_SCALES, ASPECT_RATIOS, ANCHOR_SIZE, [size, size]
    )
    num_per_location = anchors.anchors_per_location
    with tf.Graph().as_default():
        cls_outputs, box_outputs = {}, {}
        for level, (h, w) in anchors.feature_sizes.items():
            cls_value = rng.normal(
                FLAGS.logit_mean,
                FLAGS.logit_std,
                (FLAGS.batch_size, h, w, num_per_location * num_classes),
            )
            box_value = rng.normal(0.0, 0.1, (FLAGS.batch_size, h, w, num_per_location * 4))
            cls_outputs[level] = tf.Variable(cls_value.astype(np.float32), trainable=False)
            box_outputs[level] = tf.Variable(box_value.astype(np.float32), trainable=False)
        anchor_boxes = anchors_lib.generate_anchors(
            MIN_LEVEL, MAX_LEVEL, NUM_SCALES, ASPECT_RATIOS, ANCHOR_SIZE, [size, size]
        )
        image_info = tf.constant(
            [[[size, size], [size, size], [1.0, 1.0], [0.0, 0.0]]] * FLAGS.batch_size, tf.float32
        )
        builders = {
            "project": lambda: postprocess.generate_detections(
                cls_outputs,
                box_outputs,
                anchor_boxes,
                image_info,
                num_classes=num_classes,
                max_total_size=MAX_TOTAL_SIZE,
                nms_iou_threshold=IOU_THRESHOLD,
                score_threshold=SCORE_THRESHOLD,
                pre_nms_num_boxes=FLAGS.pre_nms_num_boxes,
            ),
            "ancestor_v3": lambda: _ancestor_style(
                cls_outputs,
                box_outputs,
                anchor_boxes,
                image_info,
                num_classes=num_classes,
                fast_nms=True,
            ),
            "ancestor": lambda: _ancestor_style(
                cls_outputs,
                box_outputs,
                anchor_boxes,
                image_info,
                num_classes=num_classes,
                fast_nms=False,
            ),
        }
        variants = {name: builders[name]() for name in FLAGS.variants}
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            results, first, times = _time_interleaved(sess, variants, FLAGS.iterations)
    print(
        f"batch {FLAGS.batch_size}, {size}x{size}, {anchors.num_anchors} anchors, "
        f"{num_classes} classes, logits ~ N({FLAGS.logit_mean}, {FLAGS.logit_std}), "
        f"{os.cpu_count()} CPUs, {FLAGS.iterations} timed runs each"
    )
    print("| variant | first run (s) | s / batch, median | min | max |")
    print("|---|---|---|---|---|")
    for name in variants:
        runs = times[name]
        print(
            f"| {name} | {first[name]:.2f} | {np.median(runs):.3f} | {min(runs):.3f} | "
            f"{max(runs):.3f} |"
        )
    for name in ("ancestor_v3", "ancestor"):
        if "project" not in results or name not in results:
            continue
        matched, total = _agreement(results["project"], results[name])
        print(f"project vs {name}: {matched} / {total} detections identical")


if __name__ == "__main__":
    app.run(main)
