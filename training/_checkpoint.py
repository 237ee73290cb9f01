"""Checkpoints: atomic writes, keep the latest k, best.ckpt by val top-1, resume state.

A checkpoint holds the network weights (MindCV names, so `space.load_weights` and MindCV
read it), the optimizer state (``moments.*``, ``global_step``) and ``epoch_num`` /
``step_num`` (epochs done, steps per epoch). Each file is written to a temporary name in the
same folder and renamed over the target, so a kill at any moment leaves the previous files
whole. Epoch files are named ``{model}-{epoch}_{steps_per_epoch}.ckpt`` as MindCV names them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Union

import mindspore as ms

from space import UserError, load_weights
from space._model import checkpoint_params

BEST = "best.ckpt"
_OPT_PREFIXES = ("moments.", "global_step")


@dataclass(frozen=True)
class ResumeState:
    epoch: int          # epochs already trained
    global_step: int    # optimizer steps already taken


_TMP = re.compile(r"^\..+\.\d+\.tmp\b")


def _write_atomic(items: list, path: Path, append: dict) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.ckpt")
    try:
        ms.save_checkpoint(items, str(tmp), append_dict=append)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _state(network, optimizer) -> list:
    items = [{"name": p.name, "data": p} for p in network.get_parameters()]
    if optimizer is not None:
        items += [{"name": p.name, "data": p} for p in optimizer.moments]
        items.append({"name": "global_step", "data": optimizer.global_step})
    return items


def epoch_checkpoints(folder: Union[str, Path], model: str) -> List[Path]:
    """``{model}-{epoch}_{step}.ckpt`` files in ``folder``, oldest epoch first."""
    pattern = re.compile(rf"^{re.escape(model)}-(\d+)_(\d+)\.ckpt$")
    found = [(int(m.group(1)), p) for p in Path(folder).glob(f"{model}-*.ckpt") if (m := pattern.match(p.name))]
    return [p for _, p in sorted(found)]


class CheckpointManager:
    """Writes epoch checkpoints and best.ckpt into ``folder`` (call it on rank 0 only)."""

    def __init__(self, folder: Union[str, Path], model: str, keep: int) -> None:
        self.folder = Path(folder)
        self.model = model
        self.keep = keep
        self.best_top1: Optional[float] = None
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(".*.tmp*"):  # left by a run killed while writing
            if _TMP.match(stale.name):
                stale.unlink()

    def save_epoch(self, network, optimizer, epoch: int, steps_per_epoch: int) -> Path:
        path = self.folder / f"{self.model}-{epoch}_{steps_per_epoch}.ckpt"
        _write_atomic(_state(network, optimizer), path, {"epoch_num": epoch, "step_num": steps_per_epoch})
        if self.keep > 0:
            for old in epoch_checkpoints(self.folder, self.model)[:-self.keep]:
                old.unlink()
        return path

    def save_best(self, network, optimizer, epoch: int, steps_per_epoch: int, top1: float) -> bool:
        """Write best.ckpt when ``top1`` beats every earlier epoch of this run; True if written."""
        if self.best_top1 is not None and top1 <= self.best_top1:
            return False
        self.best_top1 = top1
        _write_atomic(_state(network, optimizer), self.folder / BEST,
                      {"epoch_num": epoch, "step_num": steps_per_epoch, "top1": float(top1)})
        return True


def _scalar(params: dict, key: str) -> Optional[int]:
    value = params.get(key)
    return None if value is None else int(value.asnumpy().reshape(-1)[0])


def restore(path: Union[str, Path], network, optimizer=None) -> Optional[ResumeState]:
    """Load weights (strict) and, with an ``optimizer``, its moments and step; returns where to resume."""
    load_weights(network, path)
    if optimizer is None:
        return None
    params = checkpoint_params(path)
    epoch = _scalar(params, "epoch_num")
    step = _scalar(params, "global_step")
    moments = {k: v for k, v in params.items() if k.startswith("moments.")}
    if epoch is None or step is None or not moments:
        raise UserError(f"checkpoint {path} has no optimizer state (epoch_num, global_step, moments); "
                        "use --resume_opt False to start a new run from its weights")
    missing = [p.name for p in optimizer.moments if p.name not in moments]
    if missing:
        raise UserError(f"checkpoint {path} lacks optimizer moments for {len(missing)} parameters "
                        f"(e.g. {missing[0]}); it was saved from another model")
    ms.load_param_into_net(optimizer, {**moments, "global_step": params["global_step"]}, strict_load=False)
    return ResumeState(epoch=epoch, global_step=step)
