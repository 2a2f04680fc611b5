"""Warm start: initialise model variables from another checkpoint.

Typical use is an ImageNet backbone whose variables are stored without the
model's scope (`conv2d/kernel`); `prefix='resnet101/'` maps the model's
`resnet101/conv2d/kernel` onto it. Variables the checkpoint lacks, or holds
with another shape, keep their initialisers and are listed with the reason.
"""

import os
import re

import tensorflow.compat.v1 as tf

SKIP_BY_REGEX = "matches skip_variables_regex"
SKIP_MISSING = "not in checkpoint"
SKIP_SHAPE = "shape differs"


class WarmStartError(ValueError):
    """The warm-start checkpoint cannot be used as configured."""


def resolve_checkpoint_path(path):
    """Returns a checkpoint prefix for `path`, a prefix or a directory holding one."""
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise WarmStartError(
                f"train.checkpoint.path {path!r} is a directory without a checkpoint "
                "(no 'checkpoint' index file); give the checkpoint prefix, e.g. "
                f"{os.path.join(path, 'model.ckpt-90000')!r}"
            )
        return latest
    if not tf.io.gfile.exists(path + ".index") and not tf.io.gfile.exists(path):
        raise WarmStartError(
            f"train.checkpoint.path {path!r} does not exist; give an existing checkpoint "
            "prefix (the part before .index / .data-*) or a directory holding one"
        )
    return path


def build_assignment_map(variables, checkpoint_shapes, *, prefix="", skip_variables_regex=""):
    """Matches model variables to checkpoint entries.

    Args:
      variables: model variables (tf.Variable) to consider.
      checkpoint_shapes: dict checkpoint variable name -> shape list.
      prefix: only variables whose name starts with it are considered; it is
        removed to form the checkpoint name.
      skip_variables_regex: variables whose checkpoint name matches it
        (re.match) are not loaded.

    Returns:
      (assignment_map, skipped): dict checkpoint name -> variable, and a list of
      (variable name, reason) for variables under `prefix` that are not loaded.
    """
    skip = re.compile(skip_variables_regex) if skip_variables_regex else None
    assignment_map = {}
    skipped = []
    for var in variables:
        name = var.op.name
        if prefix and not name.startswith(prefix):
            continue
        ckpt_name = name[len(prefix) :]
        if skip is not None and skip.match(ckpt_name):
            skipped.append((name, SKIP_BY_REGEX))
        elif ckpt_name not in checkpoint_shapes:
            skipped.append((name, SKIP_MISSING))
        elif not var.shape.is_compatible_with(checkpoint_shapes[ckpt_name]):
            skipped.append(
                (
                    name,
                    f"{SKIP_SHAPE}: model {var.shape.as_list()} vs checkpoint "
                    f"{list(checkpoint_shapes[ckpt_name])}",
                )
            )
        else:
            assignment_map[ckpt_name] = var
    return assignment_map, skipped


def summarize_skipped(skipped):
    """'N missing from the checkpoint (first: name), ...' for a skipped list, by reason."""
    if not skipped:
        return "none skipped"
    groups = {}
    for name, reason in skipped:
        kind = reason.split(":", 1)[0]
        groups.setdefault(kind, []).append((name, reason))
    parts = []
    for kind, entries in groups.items():
        name, reason = entries[0]
        detail = reason.split(":", 1)[1].strip() if ":" in reason else ""
        first = f"{name}: {detail}" if detail else name
        parts.append(f"{len(entries)} {kind} (first: {first})")
    return ", ".join(parts)


def warm_start(path, *, prefix="", skip_variables_regex="", variables=None):
    """Overrides the initialisers of matching variables with checkpoint values.

    Call while building the graph, before the optimizer creates its slots.

    Returns:
      (number of variables loaded, skipped list as in build_assignment_map).

    Raises:
      WarmStartError: the path does not exist or nothing at all would load.
    """
    ckpt = resolve_checkpoint_path(path)
    checkpoint_shapes = dict(tf.train.list_variables(ckpt))
    if variables is None:
        variables = [
            v
            for v in tf.global_variables()
            if v.op.name != tf.GraphKeys.GLOBAL_STEP and v.op.name != "global_step"
        ]
    assignment_map, skipped = build_assignment_map(
        variables, checkpoint_shapes, prefix=prefix, skip_variables_regex=skip_variables_regex
    )
    if not assignment_map:
        sample = sorted(checkpoint_shapes)[:5]
        considered = [v.op.name for v in variables if v.op.name.startswith(prefix)][:5]
        raise WarmStartError(
            f"warm start would load no variable of the model from {ckpt!r}: "
            f"{summarize_skipped(skipped)}; the checkpoint holds e.g. {sample}, the model has "
            f"e.g. {considered} (train.checkpoint.path, train.checkpoint.prefix={prefix!r}); "
            "check train.checkpoint.prefix (the model scope to strip, e.g. 'resnet50/') "
            "and train.checkpoint.skip_variables_regex"
        )
    tf.train.init_from_checkpoint(ckpt, assignment_map)
    tf.logging.info(
        "Warm start from %s: loaded %d variables, skipped %d (%s)",
        ckpt,
        len(assignment_map),
        len(skipped),
        summarize_skipped(skipped),
    )
    for name, reason in skipped:
        tf.logging.info("  not loaded: %s (%s)", name, reason)
    return len(assignment_map), skipped
