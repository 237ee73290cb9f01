"""Zero-cost proxies: scores of a freshly initialised network on one batch, no training.

Each function takes the network (fresh, seeded) and a batch (images NCHW float32, labels
int32) and returns a float where higher is meant to predict higher accuracy. They run in
PyNative mode: one forward (and backward) per score is cheaper than a graph compile, and
NASWOT needs forward hooks, which graph mode does not run.

* naswot (Mellor et al., ICML 2021): log|det K| with K[i,j] = number of ReLU units on which
  inputs i and j agree (both active or both inactive). BN in training mode, as in the paper.
* synflow (Tanaka et al., NeurIPS 2020): weights replaced by their absolute values, an all-ones
  input, R = sum of the outputs; score = sum over conv/dense weights of theta * dR/dtheta.
  Data-free; BN in inference mode (at initialisation that is the identity, i.e. BN removed, as
  the paper prunes without BN). Returned as the natural log, since the raw value spans
  hundreds of orders of magnitude across depths.
* grad_norm (Abdelfattah et al., ICLR 2021): sum over conv/dense weights of ||dL/dtheta||_2 for
  the cross-entropy L on the batch; BN in training mode.
* snip (Lee et al., ICLR 2019): sum over conv/dense weights of |theta * dL/dtheta|; BN in
  training mode.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List

import numpy as np


def _weights(net) -> List:
    """Conv and dense weights (BN's gamma/beta are not counted by these proxies)."""
    return [p for p in net.trainable_params() if p.name.endswith(".weight")]


def _loss_grads(net, images, labels):
    import mindspore as ms
    from mindspore import nn

    loss_fn = nn.CrossEntropyLoss()
    weights = _weights(net)

    def forward(x, y):
        return loss_fn(net(x), y)

    net.set_train(True)
    _, grads = ms.value_and_grad(forward, None, weights)(images, labels)
    return weights, grads


def naswot(net, images, labels) -> float:
    from mindspore import nn

    codes: List[np.ndarray] = []

    def hook(cell, inputs, output):
        codes.append((output.asnumpy().reshape(output.shape[0], -1) > 0).astype(np.float64))

    handles = [cell.register_forward_hook(hook) for _, cell in net.cells_and_names() if isinstance(cell, nn.ReLU)]
    try:
        net.set_train(True)
        net(images)
    finally:
        for handle in handles:
            handle.remove()
    c = np.concatenate(codes, axis=1)
    kernel = c @ c.T + (1.0 - c) @ (1.0 - c).T
    sign, logdet = np.linalg.slogdet(kernel)
    return float(logdet) if sign != 0 else float("-inf")


def synflow(net, images, labels) -> float:
    import mindspore as ms
    from mindspore import ops

    for p in net.trainable_params():
        p.set_data(ops.abs(p))
    weights = _weights(net)
    ones = ms.Tensor(np.ones((1,) + tuple(images.shape[1:]), dtype=np.float32))

    def forward(x):
        return net(x).sum()

    net.set_train(False)
    _, grads = ms.value_and_grad(forward, None, weights)(ones)
    total = sum(float((w.asnumpy().astype(np.float64) * g.asnumpy()).sum()) for w, g in zip(weights, grads))
    return math.log(total) if total > 0 else float("-inf")


def grad_norm(net, images, labels) -> float:
    _, grads = _loss_grads(net, images, labels)
    return float(sum(np.linalg.norm(g.asnumpy().astype(np.float64)) for g in grads))


def snip(net, images, labels) -> float:
    weights, grads = _loss_grads(net, images, labels)
    return float(sum(np.abs(w.asnumpy().astype(np.float64) * g.asnumpy()).sum() for w, g in zip(weights, grads)))


NETWORK_PROXIES: Dict[str, Callable] = {"naswot": naswot, "synflow": synflow, "grad_norm": grad_norm, "snip": snip}
