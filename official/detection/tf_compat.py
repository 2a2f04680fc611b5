"""What differs between the two TensorFlow lines this code runs on, in one place.

The model code is written once against `tensorflow.compat.v1` graph APIs and runs on
TensorFlow 1.15 (Python 3.7; the runtime of Ascend 910 images, with `npu_bridge`) and
on TensorFlow 2.15 (Python 3.11). Importing this module makes the two behave alike:

- Static shapes: on 1.15, `tensor.shape[i]` is a `Dimension`, which is always truthy
  and does not compare or divide like an int; on 2.x it is an int or None. The code
  reads static shapes as ints, so 1.15 is switched to the 2.x behaviour
  (`enable_v2_tensorshape`, a documented TensorFlow 1.15 switch).

The packages whose modules read static shapes (`ops`, `dataloader`, `modeling`) import
this module from their `__init__`, so any import path gets it.
"""

import tensorflow.compat.v1 as tf

IS_TF1 = tf.__version__.startswith("1.")

if IS_TF1:
    tf.enable_v2_tensorshape()


def onednn_enabled():
    """Whether this TensorFlow runs oneDNN (MKL) kernels on the CPU."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # TensorFlow 1.15 keeps the query in its main extension.
        from tensorflow.python import pywrap_tensorflow as _pywrap_util_port
    return bool(_pywrap_util_port.IsMklEnabled())


def quiet_deprecations():
    """A context in which TensorFlow does not log its API deprecation notices.

    The Estimator and `tf.compat.v1` APIs this code is built on log dozens of them
    ("RunConfig.__init__ ... is deprecated", "Use tf.keras instead") before the first
    useful line of a run; they are notices about TensorFlow's roadmap, not warnings
    about the run. Same switch on 1.15 and 2.x.
    """
    from tensorflow.python.util import deprecation

    return deprecation.silence()
