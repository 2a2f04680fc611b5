"""Modes a parser can run in, spelt as in the ancestor's `dataloader/mode_keys.py`.

`tf.estimator.ModeKeys.PREDICT` is the string 'infer'; `canonical_mode` accepts it too so
an Estimator mode can be handed to a parser unchanged.
"""

TRAIN = "train"
EVAL = "eval"
PREDICT = "predict"
# Prediction whose labels also carry the padded ground truth (for offline evaluation).
PREDICT_WITH_GT = "predict_with_gt"

ALL_MODES = (TRAIN, EVAL, PREDICT, PREDICT_WITH_GT)
_ALIASES = {"infer": PREDICT}


class UnknownModeError(ValueError):
    """A parser or input reader was given a mode it does not know."""


def canonical_mode(mode, where):
    """Returns `mode` as one of `ALL_MODES`; raises `UnknownModeError` naming `where`."""
    mode = _ALIASES.get(mode, mode)
    if mode not in ALL_MODES:
        raise UnknownModeError(
            f"{where}: unknown mode {mode!r}; allowed modes are "
            f"{', '.join(repr(m) for m in ALL_MODES)} (or 'infer', the Estimator's spelling "
            "of predict)"
        )
    return mode
