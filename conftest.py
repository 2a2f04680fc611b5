"""Test-suite set-up shared by every test."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow.compat.v1 as tf  # noqa: E402

# The model code is written for TF 1.x graph semantics (as on Ascend's TF 1.15):
# tensors and variables hash by identity. Under TF 2.x equality semantics every
# hash asks whether execution is eager, which makes graph building with
# tf.compat.v1.layers about 1.7x slower.
tf.disable_tensor_equality()
