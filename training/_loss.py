"""The recipe's loss (cross entropy with label smoothing) and the network+loss cell.

Logits are cast to float32 before the loss so a float16 network (amp O2/O3) still computes
its softmax and reduction in float32.
"""

from __future__ import annotations

from mindspore import nn, ops
import mindspore as ms


def create_loss(label_smoothing: float = 0.0) -> nn.Cell:
    return nn.CrossEntropyLoss(reduction="mean", label_smoothing=label_smoothing)


class NetWithLoss(nn.Cell):
    """loss(network(image), label), in float32."""

    def __init__(self, network: nn.Cell, loss: nn.Cell) -> None:
        super().__init__(auto_prefix=False)
        self.network = network
        self.loss = loss

    def construct(self, image, label):
        logits = ops.cast(self.network(image), ms.float32)
        return self.loss(logits, label)


class EvalNet(nn.Cell):
    """network(image) as float32 logits."""

    def __init__(self, network: nn.Cell) -> None:
        super().__init__(auto_prefix=False)
        self.network = network

    def construct(self, image):
        return ops.cast(self.network(image), ms.float32)
