"""TFRecord decoding, the tf.data input reader and the per-model parsers."""

from official.detection import tf_compat  # noqa: F401  (TensorFlow 1.15 behaves as 2.x)
