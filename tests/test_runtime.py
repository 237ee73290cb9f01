"""Device selection (`common.runtime.configure`) on GPU/Ascend, with MindSpore's device query stubbed.

No accelerator is here, so a stand-in module answers as MindSpore does: once kernels have run,
changing the device is refused (2.4+: "The runtime has been initialized ..."). The real id must
be reported so that asking for the device the process already runs on changes nothing.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from common import UserError
from common.runtime import _current_device, configure


class _MindSporeAfterKernelsRan:
    """MindSpore 2.5+ (get_current_device, set_device) on ``target:device_id`` after kernels ran."""

    def __init__(self, target: str, device_id: int) -> None:
        self.device = (target, device_id)
        self.set_device_calls = []
        self.context = {}

    def set_context(self, **kwargs) -> None:
        self.context.update(kwargs)

    def get_current_device(self):
        return SimpleNamespace(device_target=self.device[0], device_id=self.device[1])

    def set_device(self, target, device_id=None) -> None:
        self.set_device_calls.append((target, device_id))
        raise RuntimeError("The runtime has been initialized, please set it before the kernel is executed")


class _MindSpore23:
    """MindSpore 2.3.1: no set_device / get_current_device; target and id live in the context."""

    def __init__(self, target: str, device_id: int) -> None:
        self.context = {"device_target": target, "device_id": device_id}
        self.device_calls = []

    def get_context(self, key):
        return self.context[key]

    def set_context(self, **kwargs) -> None:
        if "device_target" in kwargs:
            self.device_calls.append(kwargs)
        self.context.update(kwargs)


def test_current_device_reports_the_real_id(monkeypatch):
    assert _current_device(_MindSporeAfterKernelsRan("GPU", 3)) == ("GPU", 3)
    assert _current_device(_MindSpore23("Ascend", 5)) == ("Ascend", 5)


@pytest.mark.parametrize("asked_id", [1, None])
def test_reselecting_the_current_gpu_changes_nothing(monkeypatch, asked_id):
    ms = _MindSporeAfterKernelsRan("GPU", 1)
    monkeypatch.setitem(sys.modules, "mindspore", ms)
    configure("gpu", "graph", asked_id)  # would fail if it asked MindSpore to set the device again
    assert ms.set_device_calls == [] and ms.context["mode"] == 0


def test_another_id_after_kernels_ran_is_one_clear_error(monkeypatch):
    ms = _MindSporeAfterKernelsRan("Ascend", 1)
    monkeypatch.setitem(sys.modules, "mindspore", ms)
    with pytest.raises(UserError, match="cannot use device Ascend id 0: The runtime has been initialized"):
        configure("Ascend", "pynative", 0)
    assert ms.set_device_calls == [("Ascend", 0)]


def test_mindspore_2_3_context_fallback(monkeypatch):
    ms = _MindSpore23("Ascend", 2)
    monkeypatch.setitem(sys.modules, "mindspore", ms)
    configure("Ascend", "graph", 2)
    assert ms.device_calls == []
    configure("Ascend", "graph", 4)
    assert ms.device_calls == [{"device_target": "Ascend", "device_id": 4}]
    assert _current_device(ms) == ("Ascend", 4)
