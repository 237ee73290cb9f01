"""Checkpoints: atomic writes, keep the latest k, best.ckpt by val top-1, everything a resume needs.

A checkpoint holds the network weights (MindCV names, so `space.load_weights` and MindCV
read it), the optimizer state (``moments.*`` and ``global_step``, as MindCV writes them),
``epoch_num`` / ``step_num`` (epochs done, steps per epoch) and one string entry,
``shufflenas_state``: the `RunState` of the run (arch, classes, optimizer, loss scale, seed,
best top-1 so far) as JSON. Each file is written to a temporary name in the same folder,
flushed to disk and renamed over the target, so a kill at any moment leaves the previous
files whole. Epoch files are named ``{model}-{epoch}_{steps_per_epoch}.ckpt`` as MindCV names
them.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import mindspore as ms
import numpy as np

from common import UserError
from space import load_weights
from space import checkpoint_params

BEST = "best.ckpt"
STATE_KEY = "shufflenas_state"
_MOMENTS = "moments."
# Per-parameter state prefixes other MindSpore/MindCV optimizers write (Adam/AdamW, LAMB, RMSProp, Adagrad...).
_OTHER_OPTIMIZER_PREFIXES = ("adam_m.", "adam_v.", "moment1.", "moment2.", "mean_grad.", "mean_square.",
                             "accum.", "linear.", "exp_avg.", "exp_avg_sq.")
_TMP = re.compile(r"^\..+\.\d+\.tmp\b")


@dataclass(frozen=True)
class RunState:
    """What a checkpoint records about its run beyond tensors; written as JSON in the file."""

    epoch: int                          # epochs done
    global_step: int                    # optimizer steps done
    steps_per_epoch: int
    arch_key: str
    arch_name: str
    num_classes: int
    optimizer: str                      # "momentum" or "momentum+nesterov"
    loss_scale: float
    seed: int
    best_top1: Optional[float] = None   # best val top-1 of the run up to this epoch
    best_epoch: Optional[int] = None
    version: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunState":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class ResumeState:
    """Where a resumed run continues: ``epoch`` epochs and ``global_step`` steps done."""

    epoch: int
    global_step: int
    best_top1: Optional[float] = None
    best_epoch: Optional[int] = None
    optimizer_restored: bool = True


def optimizer_kind(use_nesterov: bool) -> str:
    return "momentum+nesterov" if use_nesterov else "momentum"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(items: list, path: Path, append: Dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.ckpt")
    try:
        ms.save_checkpoint(items, str(tmp), append_dict=append)
        with open(tmp, "rb+") as handle:  # on disk before it takes the real name
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _tensors(network, optimizer) -> list:
    items = [{"name": p.name, "data": p} for p in network.get_parameters()]
    if optimizer is not None:
        items += [{"name": p.name, "data": p} for p in optimizer.moments]
        items.append({"name": "global_step", "data": optimizer.global_step})
    return items


def _append(state: RunState) -> Dict[str, Any]:
    return {"epoch_num": state.epoch, "step_num": state.steps_per_epoch, STATE_KEY: state.to_json()}


def epoch_checkpoints(folder: Union[str, Path], model: str) -> List[Path]:
    """``{model}-{epoch}_{step}.ckpt`` files in ``folder``, oldest epoch first."""
    pattern = re.compile(rf"^{re.escape(model)}-(\d+)_(\d+)\.ckpt$")
    found = [(int(m.group(1)), p) for p in Path(folder).glob(f"{model}-*.ckpt") if (m := pattern.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(folder: Union[str, Path], model: str) -> Tuple[Optional[Path], List[str]]:
    """The newest epoch checkpoint of ``model`` in ``folder`` that reads back whole, and a note for
    each newer one that does not (None when there is none)."""
    skipped: List[str] = []
    for path in reversed(epoch_checkpoints(folder, model)):
        try:
            params = checkpoint_params(path)
        except UserError as exc:
            skipped.append(str(exc))
            continue
        if "epoch_num" in params and "global_step" in params:
            return path, skipped
        skipped.append(f"checkpoint {path} has no training state")
    return None, skipped


class CheckpointManager:
    """Writes epoch checkpoints and best.ckpt into ``folder`` (call it on rank 0 only).

    ``best_top1`` is the best val top-1 of the run so far (restored on resume), so best.ckpt
    is only replaced by a better model.
    """

    def __init__(self, folder: Union[str, Path], model: str, keep: int, best_top1: Optional[float] = None) -> None:
        self.folder = Path(folder)
        self.model = model
        self.keep = keep
        self.best_top1 = best_top1
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(".*.tmp*"):  # left by a run killed while writing
            if _TMP.match(stale.name):
                stale.unlink()

    def save_epoch(self, network, optimizer, state: RunState) -> Path:
        path = self.folder / f"{self.model}-{state.epoch}_{state.steps_per_epoch}.ckpt"
        _write_atomic(_tensors(network, optimizer), path, _append(state))
        if self.keep > 0:
            for old in epoch_checkpoints(self.folder, self.model)[:-self.keep]:
                old.unlink()
        return path

    def save_best(self, network, optimizer, state: RunState, top1: float) -> bool:
        """Write best.ckpt when ``top1`` beats every earlier epoch of this run; True if written."""
        if self.best_top1 is not None and top1 <= self.best_top1:
            return False
        self.best_top1 = top1
        _write_atomic(_tensors(network, optimizer), self.folder / BEST,
                      {**_append(state), "top1": float(top1)})
        return True


def _scalar(params: dict, key: str) -> Optional[int]:
    value = params.get(key)
    return None if value is None else int(np.asarray(value.asnumpy()).reshape(-1)[0])


def read_run_state(params: Dict[str, Any]) -> Optional[RunState]:
    text = params.get(STATE_KEY)
    if not isinstance(text, str):
        return None
    try:
        return RunState.from_json(text)
    except (ValueError, TypeError):
        return None


def _check_fits(path, saved: Optional[RunState], expected: RunState, optimizer: bool) -> None:
    """A clear error when the checkpoint's run trained another arch, class count or optimizer."""
    if saved is None:
        return
    if saved.arch_key != expected.arch_key:
        raise UserError(f"checkpoint {path} was saved from arch {saved.arch_name}, not {expected.arch_name}; "
                        "resume with the same --model/--arch")
    if saved.num_classes != expected.num_classes:
        raise UserError(f"checkpoint {path} has {saved.num_classes} classes, this run {expected.num_classes}; "
                        "resume with the same data and --num_classes")
    if optimizer and saved.optimizer != expected.optimizer:
        raise UserError(f"checkpoint {path} was saved with optimizer {saved.optimizer}, this run uses "
                        f"{expected.optimizer}; resume with the same opt/use_nesterov, or --resume_opt False")


def _load_optimizer(path, params: Dict[str, Any], optimizer) -> None:
    """Copy moments (matched by parameter name) and the step into ``optimizer``.

    Not `mindspore.load_param_into_net(optimizer, ...)`: it matches ``moments.X`` to the
    optimizer's own reference to parameter ``X`` and overwrites the network weights with the
    momentum buffers.
    """
    moments = {k: v for k, v in params.items() if k.startswith(_MOMENTS)}
    missing = [p.name for p in optimizer.moments if p.name not in moments]
    if missing:
        raise UserError(f"checkpoint {path} lacks optimizer moments for {len(missing)} parameters "
                        f"(e.g. {missing[0]}); it was saved from another model")
    for p in optimizer.moments:
        value = moments[p.name].asnumpy()
        if tuple(value.shape) != tuple(p.shape):
            raise UserError(f"checkpoint {path}: optimizer moment {p.name} has shape {tuple(value.shape)}, "
                            f"the model needs {tuple(p.shape)}; it was saved from another model")
        p.set_data(ms.Tensor(value, dtype=p.dtype))
    step = params["global_step"].asnumpy().astype(np.int32).reshape(optimizer.global_step.shape)
    optimizer.global_step.set_data(ms.Tensor(step))


def restore(path: Union[str, Path], network, optimizer=None,
            expected: Optional[RunState] = None) -> Optional[ResumeState]:
    """Load weights (strict) and, with an ``optimizer``, its moments and step; returns where to resume.

    ``expected`` describes this run: a checkpoint of another arch, class count or optimizer is
    a `UserError`. A checkpoint without optimizer state (e.g. MindCV's released weights) gives
    its weights and ``optimizer_restored=False`` (start at epoch 0).
    """
    params = checkpoint_params(path)
    saved = read_run_state(params)
    if expected is not None:
        _check_fits(path, saved, expected, optimizer is not None)
    load_weights(network, path)
    if optimizer is None:
        return None
    has_moments = any(k.startswith(_MOMENTS) for k in params)
    other = sorted({k.split(".", 1)[0] for k in params if k.startswith(_OTHER_OPTIMIZER_PREFIXES)})
    if not has_moments and other:
        raise UserError(f"checkpoint {path} holds the state of another optimizer ({', '.join(other)}), not "
                        "momentum; use --resume_opt False to start a new run from its weights")
    epoch, step = _scalar(params, "epoch_num"), _scalar(params, "global_step")
    if not has_moments or epoch is None or step is None:
        return ResumeState(epoch=0, global_step=0, optimizer_restored=False)
    _load_optimizer(path, params, optimizer)
    return ResumeState(epoch=epoch, global_step=step, best_top1=saved.best_top1 if saved else None,
                       best_epoch=saved.best_epoch if saved else None)


__all__ = ["BEST", "CheckpointManager", "ResumeState", "RunState", "epoch_checkpoints", "latest_checkpoint",
           "optimizer_kind", "read_run_state", "restore"]
