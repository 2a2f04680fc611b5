"""Collective ops of the fake adapter: one process holds one rank, so they are identities."""

import tensorflow.compat.v1 as tf

from npu_bridge._record import record


def allreduce(tensor, reduction, fusion=1, fusion_id=-1, group="hccl_world_group"):
    record("hccl_ops.allreduce", reduction=reduction, fusion=fusion, group=group)
    return tf.identity(tensor)


def broadcast(tensor, root_rank, fusion=2, fusion_id=0, group="hccl_world_group"):
    record("hccl_ops.broadcast", root_rank=root_rank, group=group)
    return [tf.identity(t) for t in tensor]
