"""Distribution strategies for GPUs and CPUs (Ascend ranks use npu_bridge instead).

- Several local GPUs, or `--num_devices` virtual CPU devices: `MirroredStrategy`
  (all-reduce inside one process).
- A `TF_CONFIG` cluster of machines: `MultiWorkerMirroredStrategy` (collective
  all-reduce between processes; each uses all GPUs it sees, or its CPU).

Both feed the Estimator through `RunConfig(train_distribute=...)`. The input function
then receives an `input_context`, reads its worker's shard and batches the images of one
replica (`placement.replica_batch_size`).
"""

import tensorflow.compat.v1 as tf


def local_device_names(placement):
    """['/gpu:0', ...] or ['/cpu:0', ...]: the devices this process drives."""
    kind = "gpu" if placement.device == "gpu" else "cpu"
    return [f"/{kind}:{index}" for index in range(placement.local_devices)]


def build_strategy(placement):
    """The tf.distribute strategy for a CPU/GPU placement, or None for one device."""
    if placement.device not in ("cpu", "gpu"):
        raise ValueError(f"build_strategy: only cpu and gpu placements, got {placement.device!r}")
    if placement.multi_worker:
        # Reads the cluster and this task from TF_CONFIG.
        return tf.distribute.experimental.MultiWorkerMirroredStrategy()
    if placement.local_devices > 1:
        # Built outside eager execution: the Estimator drives it in graph mode, and an
        # eagerly built one would place an eager variable on each device, which fails
        # for virtual CPU devices the eager context was not configured with.
        with tf.Graph().as_default():
            return tf.distribute.MirroredStrategy(devices=local_device_names(placement))
    return None
