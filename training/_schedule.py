"""Learning rate per step: linear warmup from ``warmup_factor * lr``, then cosine decay to min_lr.

The values match MindCV's ``create_scheduler(scheduler='cosine_decay')`` (mindcv/scheduler),
which the ShuffleNetV2 recipes were trained with: step ``i`` of the warmup gets
``lr * (f + (1 - f) * i / (steps_per_epoch * warmup_epochs))``; step ``j`` after it gets
``min_lr + (lr - min_lr) / 2 * (1 + cos(pi * t / decay_epochs))`` with
``t = min(j / steps_per_epoch, decay_epochs)`` (``floor`` of it when ``lr_epoch_stair``, the
warmup then steps per epoch too); steps past warmup + decay stay at min_lr. The lr scales with
nothing implicitly: the recipes' lr is for 8 devices x batch 64.
"""

from __future__ import annotations

import math
from typing import List

from common import UserError


def lr_schedule(lr: float, steps_per_epoch: int, epochs: int, warmup_epochs: int = 0, decay_epochs: int = 0,
                min_lr: float = 0.0, warmup_factor: float = 0.0, scheduler: str = "cosine_decay",
                lr_epoch_stair: bool = False) -> List[float]:
    """One learning rate per training step, ``steps_per_epoch * epochs`` of them."""
    if steps_per_epoch < 1:
        raise UserError(f"steps per epoch must be at least 1, got {steps_per_epoch}; use a smaller batch_size")
    warmup = min(warmup_epochs, epochs)
    lrs: List[float] = []
    for i in range(steps_per_epoch * warmup):
        progress = (i // steps_per_epoch if lr_epoch_stair else i / steps_per_epoch) / warmup_epochs
        lrs.append(lr * warmup_factor + progress * (lr - lr * warmup_factor))
    main_steps = steps_per_epoch * (epochs - warmup)
    if scheduler == "constant":
        return lrs + [lr] * main_steps
    if decay_epochs < 1:
        raise UserError("decay_epochs must be at least 1 for cosine_decay")
    delta = 0.5 * (lr - min_lr)
    for j in range(main_steps):
        t = (j // steps_per_epoch) if lr_epoch_stair else j / steps_per_epoch
        if t >= decay_epochs:
            lrs.append(min_lr)
        else:
            lrs.append(min_lr + delta * (1.0 + math.cos(math.pi * t / decay_epochs)))
    return lrs
