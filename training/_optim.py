"""Parameter groups, the momentum optimizer and the loss scale of the recipe.

Weight decay follows MindCV's ``weight_decay_filter: auto``: BN gamma/beta and biases get
none, every other trainable parameter (the conv and dense weights) gets ``weight_decay``.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from ._config import TrainConfig

_NO_DECAY_SUFFIXES = ("gamma", "beta", "bias")


def decay_groups(params: Sequence) -> Tuple[List, List]:
    """(decayed, not decayed) trainable parameters; the second holds BN gamma/beta and biases."""
    decay, no_decay = [], []
    for p in params:
        (no_decay if p.name.rsplit(".", 1)[-1] in _NO_DECAY_SUFFIXES else decay).append(p)
    return decay, no_decay


def param_groups(params: Sequence, weight_decay: float, weight_decay_filter: str = "auto") -> List[Dict]:
    if weight_decay_filter == "disable":
        return [{"params": list(params), "weight_decay": weight_decay}, {"order_params": list(params)}]
    decay, no_decay = decay_groups(params)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
            {"order_params": list(params)}]


def create_optimizer(params: Sequence, config: TrainConfig, lrs: Sequence[float], loss_scale: float = 1.0):
    """nn.Momentum over ``params`` with a per-step learning rate (indexed by its global_step).

    ``loss_scale`` divides the gradients back inside the optimizer (the loss was multiplied).
    """
    import numpy as np
    from mindspore import Tensor, nn

    return nn.Momentum(param_groups(params, config.weight_decay, config.weight_decay_filter),
                       learning_rate=Tensor(np.asarray(lrs, dtype=np.float32)), momentum=config.momentum,
                       use_nesterov=config.use_nesterov, loss_scale=loss_scale)
