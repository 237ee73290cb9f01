"""Data-parallel context under msrun: communication init, rank/size, metric all-reduce.

msrun sets the environment (RANK_ID, MS_WORKER_NUM, scheduler address); `init_distributed`
calls `mindspore.communication.init()` and sets DATA_PARALLEL with gradient mean, so
nn.TrainOneStepCell inserts the gradient all-reduce itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from common import UserError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    group_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.group_size > 1

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes checkpoints, logs and exports."""
        return self.rank == 0


def init_distributed(enabled: bool) -> Context:
    """Set up data parallelism when ``enabled`` (call after `common.runtime.configure`)."""
    if not enabled:
        return Context()
    from mindspore.communication import get_group_size, get_rank, init

    try:
        init()
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"distribute True needs a launcher: run under msrun (e.g. msrun --worker_num 2 "
                        f"--local_worker_num 2 python train.py ...); communication init failed: {first}") from None
    size = get_group_size()
    ms.reset_auto_parallel_context()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=size)
    return Context(rank=get_rank(), group_size=size)


_REDUCER: Optional[object] = None


def all_reduce_sum(values: np.ndarray, ctx: Context) -> np.ndarray:
    """Element-wise sum of a float array over all ranks (the array itself when not distributed)."""
    values = np.asarray(values, dtype=np.float32)
    if not ctx.distributed:
        return values
    global _REDUCER
    if _REDUCER is None:
        _REDUCER = _AllReduce()
    return _REDUCER(ms.Tensor(values)).asnumpy()


def shard_overlap(indices: np.ndarray, total: int, ctx: Context) -> int:
    """How many of ``total`` items more than one rank reads, given this rank's ``indices``."""
    seen = np.zeros(total, dtype=np.float32)
    seen[np.asarray(indices, dtype=np.int64)] = 1.0
    return int((all_reduce_sum(seen, ctx) > 1.5).sum())


class _AllReduce(nn.Cell):
    def __init__(self):
        super().__init__()
        self.op = ops.AllReduce()

    def construct(self, x):
        return self.op(x)
