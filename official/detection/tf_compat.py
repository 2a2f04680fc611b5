"""What differs between the two TensorFlow lines this code runs on, in one place.

The model code is written once against `tensorflow.compat.v1` graph APIs and runs on
TensorFlow 1.15 (Python 3.7; the runtime of Ascend 910 images, with `npu_bridge`) and
on TensorFlow 2.15 (Python 3.11). Importing this module makes the two behave alike:

- Static shapes: on 1.15, `tensor.shape[i]` is a `Dimension`, which is always truthy
  and does not compare or divide like an int; on 2.x it is an int or None. The code
  reads static shapes as ints, so 1.15 is switched to the 2.x behaviour
  (`enable_v2_tensorshape`, a documented TensorFlow 1.15 switch).

- Reading files in parallel: on 1.15, an iterator over `Dataset.interleave` with
  `num_parallel_calls` that is destroyed before its end (training stops at a step
  count; evaluation of `eval_samples` stops early) can crash the process with a
  segmentation fault in a later `Session.run` of the same process (measured here: 4 of
  4 processes of six such iterators each). The older
  `tf.data.experimental.parallel_interleave` reads the same files in the same order
  without the crash, so `interleave_files` uses it there.

- XLA's clustering search: on 1.15, the first run of every session searches the whole
  graph for ops XLA could compile (MarkForCompilationPass), although XLA compiles
  nothing unless asked: 3.3 s of the 4.9 s first training step of SpineNet-49S (33,000
  ops), and as much at the start of each evaluation. 2.x skips the search itself. On
  1.15, importing this module sets TF_XLA_FLAGS=--tf_xla_clustering_fuel=0, with which
  the search stops at once (TensorFlow reads the flag at its first session run), unless
  the user set TF_XLA_FLAGS; `XLA_CLUSTERING_SKIPPED` says whether it did.

The packages whose modules read static shapes (`ops`, `dataloader`, `modeling`) import
this module from their `__init__`, so any import path gets it.
"""

import os

import tensorflow.compat.v1 as tf

IS_TF1 = tf.__version__.startswith("1.")

if IS_TF1:
    tf.enable_v2_tensorshape()

XLA_NO_CLUSTERING = "--tf_xla_clustering_fuel=0"
XLA_CLUSTERING_SKIPPED = IS_TF1 and "TF_XLA_FLAGS" not in os.environ
if XLA_CLUSTERING_SKIPPED:
    os.environ["TF_XLA_FLAGS"] = XLA_NO_CLUSTERING


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


def interleave_files(files, dataset_fn, cycle_length):
    """`dataset_fn(file)` of each file, `cycle_length` files read in parallel.

    One element from each open file in turn (block length 1), in the order of `files`,
    on both lines of TensorFlow; see the module docstring for why 1.15 uses another op.
    """
    if IS_TF1:
        return files.apply(
            tf.data.experimental.parallel_interleave(
                dataset_fn, cycle_length=cycle_length, block_length=1
            )
        )
    return files.interleave(
        dataset_fn,
        cycle_length=cycle_length,
        block_length=1,
        num_parallel_calls=tf.data.experimental.AUTOTUNE,
    )


def strip_default_attrs(graph_def):
    """`graph_def` without the node attributes that hold their op's default value.

    TensorFlow 2.x writes attributes that 1.15's ops do not have, at their default
    values (e.g. `exponential_avg_factor` of FusedBatchNormV3); 1.15 refuses to import
    a graph that names them. Without them, a graph written on either lane imports on both.
    """
    from tensorflow.python.framework import meta_graph

    holder = tf.MetaGraphDef()
    holder.graph_def.CopyFrom(graph_def)
    meta_graph.strip_graph_default_valued_attrs(holder)
    return holder.graph_def
