"""Backbones, necks, heads, layers, losses and the models built from them."""

from official.detection import tf_compat  # noqa: F401  (TensorFlow 1.15 behaves as 2.x)
