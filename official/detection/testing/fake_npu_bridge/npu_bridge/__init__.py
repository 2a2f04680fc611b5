"""Fake Ascend adapter for CPU tests (see ../README.md)."""

from npu_bridge._record import CALLS, record

__all__ = ["CALLS", "record"]
