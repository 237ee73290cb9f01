"""Choosing MindSpore's device and execution mode, on 2.3.1 (Ascend images) and on 2.10.

`mindspore.set_device` appeared after 2.3; older releases take ``device_target`` through
`set_context`. Everything in the project selects its device through `configure`, so the
fallback lives in one place.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

from .errors import UserError

DEVICE_TARGETS = ("CPU", "GPU", "Ascend")
_MODES = {"graph": 0, "pynative": 1, "0": 0, "1": 1}


def normalize_device(device: str) -> str:
    """``cpu`` → ``CPU``, ``ascend`` → ``Ascend``; unknown names are a UserError."""
    for target in DEVICE_TARGETS:
        if str(device).lower() == target.lower():
            return target
    raise UserError(f"unknown device {device!r}; choose one of {', '.join(DEVICE_TARGETS)}")


def parse_mode(mode: Union[int, str]) -> int:
    """``graph``/0 → 0 (GRAPH_MODE), ``pynative``/1 → 1 (PYNATIVE_MODE)."""
    key = str(mode).lower()
    if key not in _MODES:
        raise UserError(f"unknown mode {mode!r}; use 0 or 'graph' (graph mode), 1 or 'pynative'")
    return _MODES[key]


def configure(device_target: str = "CPU", mode: Union[int, str] = "graph", device_id: Optional[int] = None) -> None:
    """Select the device and execution mode for this process.

    Raises UserError when this MindSpore build cannot run on ``device_target`` (e.g. the CPU
    wheel asked for GPU) or ``device_id`` does not exist.
    """
    import mindspore as ms

    target = normalize_device(device_target)
    ms.set_context(mode=parse_mode(mode))
    current_target, current_id = _current_device(ms)
    if current_target == target and device_id in (None, current_id):
        return  # already there; asking again once kernels have run is an error in MindSpore 2.4+
    try:
        if hasattr(ms, "set_device"):
            ms.set_device(target, device_id) if device_id is not None else ms.set_device(target)
        elif device_id is not None:
            ms.set_context(device_target=target, device_id=device_id)
        else:
            ms.set_context(device_target=target)
    except (RuntimeError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot use device {target}"
                        f"{'' if device_id is None else f' id {device_id}'}: {detail}") from None


def current_device() -> str:
    """The device target this process runs on now (``CPU``, ``GPU`` or ``Ascend``)."""
    import mindspore as ms

    return _current_device(ms)[0]


def _current_device(ms) -> Tuple[str, Optional[int]]:
    """(device_target, device_id) this process runs on now.

    MindSpore 2.5+ answers with `get_current_device()`; older releases keep both in the
    context (``device_id`` defaults to 0 there too). None only where neither says.
    """
    import warnings

    current = getattr(ms, "get_current_device", None)
    if current is not None:
        info = current()
        return info.device_target, info.device_id
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # get_context(...) is deprecated in 2.4+ but still answers
        target = ms.get_context("device_target")
        try:
            device_id = ms.get_context("device_id")
        except (ValueError, RuntimeError):
            device_id = None
    return target, None if device_id is None else int(device_id)


def synchronize() -> None:
    """Wait for queued device work (no-op where the API is missing, e.g. MindSpore 2.3 CPU)."""
    import mindspore as ms

    # 2.4+ has mindspore.runtime.synchronize; 2.3 has mindspore.hal.synchronize.
    sync = (getattr(getattr(ms, "runtime", None), "synchronize", None)
            or getattr(getattr(ms, "hal", None), "synchronize", None))
    if sync is not None:
        sync()
