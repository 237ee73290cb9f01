"""Mixed precision: which amp_level the device can run, said once, never silently changed.

MindSpore's CPU backend has no fast float16 convolution (its depthwise/1x1 kernels run in
float32 and float16 only adds casts), so on CPU every level falls back to O0. GPU and Ascend
run the requested level. ``auto`` means O3 on Ascend, O2 on GPU, O0 on CPU.
"""

from __future__ import annotations

from typing import Optional, Tuple

_AUTO = {"Ascend": "O3", "GPU": "O2", "CPU": "O0"}


def resolve_amp(level: str, device_target: str) -> Tuple[str, Optional[str]]:
    """(level to use, a note to log once when it differs from the one asked for)."""
    if level == "auto":
        return _AUTO[device_target], None
    if device_target == "CPU" and level != "O0":
        return "O0", (f"amp_level {level} asks for float16, which MindSpore's CPU backend does not run fast; "
                      "using O0 (float32) on CPU")
    return level, None


def apply_amp(network, level: str):
    """Cast ``network`` for ``level`` (O0: unchanged). BatchNorm stays float32 as MindSpore's amp keeps it."""
    if level == "O0":
        return network
    from mindspore import amp

    return amp.auto_mixed_precision(network, level)
