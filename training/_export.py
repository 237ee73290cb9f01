"""Export a trained network to MindIR (MindSpore Lite / Ascend inference) or ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from common import UserError

from ._config import EXPORT_FORMATS

_SUFFIX = {"MINDIR": ".mindir", "ONNX": ".onnx"}


def export_network(network, path: Union[str, Path], file_format: str = "MINDIR", resolution: int = 224,
                   batch_size: int = 1, in_channels: int = 3) -> Path:
    """Write ``network`` (in inference mode) for an input of ``batch_size x 3 x resolution^2``.

    Returns the written file; its suffix is .mindir or .onnx whatever ``path`` ends with. A
    network on the fast CPU path is written as its stock equivalent (no custom op deploys).
    """
    import mindspore as ms

    from space import stock_network

    fmt = str(file_format).upper()
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {file_format!r}")
    path = Path(path)
    # Arch names contain dots (s24-w48.96.192-...), so strip only a known suffix.
    stem = path.with_suffix("") if path.suffix.lower() in _SUFFIX.values() else path
    out = stem.parent / (stem.name + _SUFFIX[fmt])
    out.parent.mkdir(parents=True, exist_ok=True)
    network = stock_network(network)
    network.set_train(False)
    sample = ms.Tensor(np.zeros((batch_size, in_channels, resolution, resolution), np.float32))
    onnx_export = getattr(getattr(ms, "onnx", None), "export", None)  # 2.10+; 2.3 only has ms.export
    if fmt == "ONNX" and onnx_export is not None:
        onnx_export(network, sample, file_name=str(out), input_names=["image"], output_names=["logits"])
    else:
        ms.export(network, sample, file_name=str(out), file_format=fmt)
    if not out.is_file():
        raise RuntimeError(f"mindspore.export reported no error but {out} was not written")
    return out
