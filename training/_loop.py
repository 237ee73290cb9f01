"""The training loop and evaluation: `train(config) -> TrainResult`, `evaluate(...) -> EvalMetrics`.

`train` runs one recipe end to end in this process: device and data parallelism, data,
network (a reference name, an Arch YAML or an `Arch` passed in), optimizer with the per-step
schedule, optional resume, epochs of steps, validation after each epoch (``val_interval``),
checkpoints and best.ckpt (rank 0), per-epoch callbacks, export. The short-training proxy calls
it with a small ``epoch_size``/``max_steps`` and a callback that reports to an Optuna pruner:

    def report(epoch, metrics):          # metrics: top1, top5, val_loss, train_loss, lr, ...
        trial.report(metrics["top1"], epoch)
        return trial.should_prune()      # True stops the run after this epoch
    result = training.train({"dataset": "fashion_mnist", "image_resize": 64, ...},
                            arch=arch, callbacks=[report])
    if result.stopped_by_callback: raise optuna.TrialPruned()

A non-finite loss, or a loss above ``diverge_loss`` (default 10 x ln(num_classes)), raises
`TrainingDiverged` at that step; nothing hangs waiting for it.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, TextIO, Tuple, Union

import numpy as np

from common import UserError
from space import Arch, build, reference_model, reference_name, resolve_arch
from common.runtime import configure

from ._amp import apply_amp, resolve_amp
from ._checkpoint import CheckpointManager, ResumeState, RunState, latest_checkpoint, optimizer_kind, restore
from ._config import TrainConfig, make_config
from ._distributed import Context, all_reduce_sum, init_distributed, shard_overlap
from ._export import export_network
from ._logging import RunLog
from ._loss import EvalNet, NetWithLoss, create_loss
from ._optim import create_optimizer
from ._schedule import lr_schedule

Callback = Callable[[int, Dict[str, float]], Optional[bool]]


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf or exceeded the divergence bound; the run was stopped."""

    def __init__(self, reason: str, epoch: int, step: int, loss: float) -> None:
        super().__init__(f"training diverged at epoch {epoch} step {step}: {reason}")
        self.reason, self.epoch, self.step, self.loss = reason, epoch, step, loss


@dataclass(frozen=True)
class EvalMetrics:
    top1: float      # percent
    top5: float      # percent (top-k with k = min(5, num_classes))
    loss: float      # mean cross entropy, no label smoothing
    count: int       # images evaluated (over all ranks)


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    lr: float
    epoch_s: float
    img_per_s: float
    top1: Optional[float] = None
    top5: Optional[float] = None
    val_loss: Optional[float] = None


@dataclass
class TrainResult:
    top1: Optional[float]
    top5: Optional[float]
    loss: Optional[float]
    curve: List[EpochMetrics]
    img_per_s: Optional[float]      # global training throughput after compile (median step)
    compile_s: Optional[float]      # first step minus a steady step: graph compile time
    epochs: int                     # epochs completed (counting resumed ones)
    global_step: int
    best_top1: Optional[float] = None
    best_epoch: Optional[int] = None
    # Training-speed signals of this process's steps (Ru et al. 2021, "Speedy performance estimation
    # for neural architecture search"): the summed training loss and the loss of the last tenth.
    loss_sum: float = 0.0
    loss_steps: int = 0
    final_train_loss: Optional[float] = None
    stopped_by_callback: bool = False
    stopped_by_max_steps: bool = False
    ckpt_dir: Optional[str] = None
    exported: Optional[str] = None
    network: Any = field(default=None, repr=False)

    def to_dict(self) -> Dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "network"}


def _topk_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[count, top-1 hits, top-5 hits, summed cross entropy] of one batch."""
    k = min(5, logits.shape[1])
    topk = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    top1 = logits.argmax(axis=1) == labels
    top5 = (topk == labels[:, None]).any(axis=1)
    shifted = logits - logits.max(axis=1, keepdims=True)
    nll = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(labels)), labels]
    return np.array([len(labels), top1.sum(), top5.sum(), nll.sum()], dtype=np.float64)


def evaluate(network, dataset, ctx: Context = Context()) -> EvalMetrics:
    """Top-1/top-5/loss of ``network`` over every batch of ``dataset`` (summed over ranks)."""
    eval_net = network if isinstance(network, EvalNet) else EvalNet(network)
    eval_net.set_train(False)
    totals = np.zeros(4, dtype=np.float64)
    for image, label in dataset.create_tuple_iterator(num_epochs=1):
        totals += _topk_loss(eval_net(image).asnumpy(), label.asnumpy().astype(np.int64))
    totals = all_reduce_sum(totals.astype(np.float32), ctx).astype(np.float64)
    n = int(round(totals[0]))
    if n == 0:
        raise UserError("the validation set yielded no images; check val_split and data_dir")
    return EvalMetrics(top1=100.0 * totals[1] / n, top5=100.0 * totals[2] / n, loss=totals[3] / n, count=n)


def _model_label(config: TrainConfig, arch: Arch, arch_given: bool) -> str:
    """File stem of checkpoints/exports: the --model name, else the reference's MindCV name or arch.name."""
    if not arch_given and not config.arch:
        return config.model
    ref = reference_name(arch)
    return reference_model(ref).mindcv_name if ref else arch.name


def _loaders(config: TrainConfig, ctx: Context, need_train: bool):
    from . import data

    dcfg = config.data_config()
    train = (data.create_loader(dcfg, "train", training=True, num_shards=ctx.group_size, shard_id=ctx.rank)
             if need_train else None)
    val = data.create_loader(dcfg, "val", training=False, num_shards=ctx.group_size, shard_id=ctx.rank)
    return train, val


def _num_classes(config: TrainConfig, loader) -> int:
    """The classifier size: num_classes, checked against the classes the data holds."""
    if config.num_classes is None:
        return loader.num_classes
    data = config.data_dir or config.dataset
    if config.num_classes < loader.num_classes:
        raise UserError(f"num_classes {config.num_classes} is smaller than the {loader.num_classes} classes "
                        f"of {data}; set --num_classes {loader.num_classes} (or None to count them)")
    if config.num_classes > loader.num_classes:
        sys.stderr.write(f"warning: num_classes {config.num_classes} is larger than the {loader.num_classes} classes "
                         f"of {data}: {config.num_classes - loader.num_classes} outputs never see a label "
                         f"(--num_classes {loader.num_classes} fits the data)\n")
    return config.num_classes


def setup(config: TrainConfig) -> Tuple[TrainConfig, Context]:
    """Device, mode and (under msrun) data parallelism for ``config``; seeds.

    ``device_target: auto`` becomes the default device of this MindSpore build.
    """
    import mindspore as ms

    if config.device_target == "auto":
        config = config.replace(device_target=ms.get_context("device_target"))
    device_id = config.device_id
    if device_id is None and config.distribute and config.device_target != "CPU":
        device_id = int(os.environ.get("DEVICE_ID", os.environ.get("LOCAL_RANK", "0")))
    configure(config.device_target, config.mode, device_id)
    ctx = init_distributed(config.distribute)
    ms.set_seed(config.seed)
    np.random.seed(config.seed)
    return config, ctx


def train(config: Union[TrainConfig, Mapping[str, Any], None] = None, *, arch: Optional[Arch] = None,
          callbacks: Sequence[Callback] = (), stream: TextIO = sys.stdout, **overrides: Any) -> TrainResult:
    """Train one network with the recipe ``config`` (a TrainConfig or a dict of recipe keys).

    ``arch`` overrides the config's model/arch. ``callbacks`` are called after each evaluated
    epoch with (epoch, metrics) on every rank; any returning True ends the run there. Raises
    `TrainingDiverged`, `space.UserError` for bad input.
    """
    cfg, ctx = setup(make_config(config, **overrides))
    arch_given = arch is not None
    arch = arch if arch_given else resolve_arch(cfg.arch or cfg.model)
    label = _model_label(cfg, arch, arch_given)
    save_dir = Path(cfg.ckpt_save_dir)
    log = RunLog(save_dir if ctx.is_main else None, enabled=ctx.is_main, stream=stream)
    try:
        return _run(cfg, ctx, arch, label, save_dir, log, callbacks)
    finally:
        log.close()


def _run(cfg: TrainConfig, ctx: Context, arch: Arch, label: str, save_dir: Path, log: RunLog,
         callbacks: Sequence[Callback]) -> TrainResult:
    from mindspore import nn

    export_only = cfg.epoch_size == 0
    if export_only:  # no data read: the class count comes from the flag or the folder names
        from .data import num_classes_of

        if not cfg.export:
            raise UserError("epoch_size 0 trains nothing; add --export MINDIR|ONNX to export --ckpt_path")
        train_loader = val_loader = None
        num_classes = cfg.num_classes or num_classes_of(cfg.data_config())
    else:
        train_loader, val_loader = _loaders(cfg, ctx, need_train=True)
        num_classes = _num_classes(cfg, val_loader)
    amp_level, amp_note = resolve_amp(cfg.amp_level, cfg.device_target)
    if amp_note:
        log.note(amp_note)
    if cfg.dataset_sink_mode:
        log.note("dataset_sink_mode True: steps are fed from Python here (sink mode is not used)")
    net = apply_amp(build(arch, num_classes=num_classes, fast_cpu=cfg.fast_cpu), amp_level)
    log.event("start", f"model {label} ({arch.name}), {num_classes} classes, {cfg.image_resize} px, device "
              f"{cfg.device_target}, amp {amp_level}, ranks {ctx.group_size}, batch {cfg.batch_size}/rank",
              model=label, arch=arch.to_dict(), num_classes=num_classes, ranks=ctx.group_size,
              amp_level=amp_level, config=cfg.to_dict())

    if export_only:
        if cfg.ckpt_path:
            restore(cfg.ckpt_path, net)
        result = TrainResult(None, None, None, [], None, None, 0, 0, ckpt_dir=str(save_dir), network=net)
        return _finish(cfg, ctx, net, label, save_dir, log, result, val_loader, evaluated=False)

    steps_per_epoch = train_loader.num_batches
    if steps_per_epoch < 1:
        raise UserError(f"{train_loader.num_samples} training images per rank make no batch of {cfg.batch_size}; "
                        "lower batch_size or set drop_remainder False")
    lrs = lr_schedule(cfg.lr, steps_per_epoch, cfg.epoch_size, cfg.warmup_epochs, cfg.decay_epochs, cfg.min_lr,
                      cfg.warmup_factor, cfg.scheduler, cfg.lr_epoch_stair)
    opt = create_optimizer(net.trainable_params(), cfg, lrs, loss_scale=cfg.loss_scale)
    run_state = RunState(epoch=0, global_step=0, steps_per_epoch=steps_per_epoch, arch_key=arch.key,
                         arch_name=arch.name, num_classes=num_classes, optimizer=optimizer_kind(cfg.use_nesterov),
                         loss_scale=cfg.loss_scale, seed=cfg.seed)
    resumed = _resume(cfg, save_dir, label, net, opt, run_state, steps_per_epoch, lrs, log)
    start_epoch, global_step = resumed.epoch, resumed.global_step
    best_top1, best_epoch = resumed.best_top1, resumed.best_epoch
    if ctx.distributed:
        _check_ranks_agree(global_step, ctx)
    if ctx.distributed and train_loader.sampler is not None:
        sampler = train_loader.sampler
        overlap = shard_overlap(sampler.indices(start_epoch), sampler.total, ctx)
        log.event("shards", f"data: {ctx.group_size} ranks x {train_loader.num_samples} training images, "
                  f"{overlap} read by more than one rank", ranks=ctx.group_size,
                  per_rank=train_loader.num_samples, overlap=overlap)
        if overlap:
            raise RuntimeError(f"{overlap} training images are in more than one rank's shard")
    train_step = nn.TrainOneStepCell(NetWithLoss(net, create_loss(cfg.label_smoothing)), opt, sens=cfg.loss_scale)
    eval_net = EvalNet(net)
    ckpts = CheckpointManager(save_dir, label, cfg.keep_checkpoint_max, best_top1) if ctx.is_main else None
    bound = cfg.diverge_loss if cfg.diverge_loss is not None else 10.0 * math.log(max(num_classes, 2))
    global_batch = cfg.batch_size * ctx.group_size

    curve: List[EpochMetrics] = []
    step_times: List[float] = []
    first_step_s: Optional[float] = None
    last_eval: Optional[EvalMetrics] = None
    stopped_cb = stopped_steps = False
    epoch = start_epoch
    all_losses: List[float] = []
    for epoch in range(start_epoch + 1, cfg.epoch_size + 1):
        iterator = train_loader.epoch_iterator(epoch - 1)
        train_step.set_train(True)
        epoch_start = time.perf_counter()
        window: List[float] = []
        epoch_losses: List[float] = []
        epoch_steps: List[float] = []
        window_start, window_steps = time.perf_counter(), 0
        for step, (image, label_t) in enumerate(iterator, start=1):
            t0 = time.perf_counter()
            loss = float(train_step(image, label_t).asnumpy())
            if ctx.distributed:  # mean over ranks: every rank logs it and takes the same divergence decision
                loss = float(all_reduce_sum(np.array([loss]), ctx)[0]) / ctx.group_size
            dt = time.perf_counter() - t0
            global_step += 1
            if first_step_s is None:
                first_step_s = dt
                log.event("compile", f"first step (graph compile + step): {dt:.2f} s", first_step_s=dt)
                window_start, window_steps = time.perf_counter(), -1  # keep the compile out of ms/step
            else:
                step_times.append(dt)
                epoch_steps.append(dt)
            if not math.isfinite(loss) or loss > bound:
                why = "loss is not finite" if not math.isfinite(loss) else f"loss {loss:.4g} > bound {bound:.4g}"
                log.event("diverged", f"stopping: {why} at epoch {epoch} step {step}", reason=why, loss=loss)
                raise TrainingDiverged(why, epoch, step, loss)
            window.append(loss)
            window_steps += 1
            epoch_losses.append(loss)
            all_losses.append(loss)
            log.progress(epoch, step, steps_per_epoch)
            if step % cfg.log_interval == 0 or step == steps_per_epoch:
                elapsed = time.perf_counter() - window_start
                ms_step = 1000.0 * elapsed / max(window_steps, 1)
                img_s = global_batch * window_steps / elapsed if window_steps else float("nan")
                lr_now = lrs[global_step - 1]
                log.event("step", f"epoch {epoch}/{cfg.epoch_size} step {step}/{steps_per_epoch} "
                          f"loss {np.mean(window):.4f} lr {lr_now:.6f} {ms_step:.1f} ms/step "
                          f"{img_s:.1f} img/s",
                          epoch=epoch, step=step, global_step=global_step, loss=float(np.mean(window)),
                          lr=lr_now, ms_per_step=ms_step, img_per_s=img_s)
                window, window_start, window_steps = [], time.perf_counter(), 0
            if cfg.max_steps is not None and global_step >= cfg.max_steps:
                stopped_steps = True
                break
        epoch_s = time.perf_counter() - epoch_start
        steady = statistics.median(epoch_steps) if epoch_steps else None
        row = EpochMetrics(epoch=epoch, train_loss=float(np.mean(epoch_losses)) if epoch_losses else float("nan"),
                           lr=lrs[max(global_step - 1, 0)], epoch_s=epoch_s,
                           img_per_s=global_batch / steady if steady else float("nan"))
        last_epoch = epoch == cfg.epoch_size or stopped_steps
        if cfg.val_while_train and (epoch % cfg.val_interval == 0 or last_epoch):
            t_eval = time.perf_counter()
            last_eval = evaluate(eval_net, val_loader.dataset, ctx)
            row = replace(row, top1=last_eval.top1, top5=last_eval.top5, val_loss=last_eval.loss)
            eval_s = time.perf_counter() - t_eval
        else:
            eval_s = 0.0
        curve.append(row)
        val_text = (f" val top1 {row.top1:.2f} top5 {row.top5:.2f} loss {row.val_loss:.4f} "
                    f"({last_eval.count} images, {eval_s:.1f} s)" if row.top1 is not None else "")
        log.event("epoch", f"epoch {epoch}/{cfg.epoch_size} done: train loss {row.train_loss:.4f}{val_text} "
                  f"epoch time {epoch_s:.1f} s", **asdict(row), eval_s=eval_s)
        improved = row.top1 is not None and (best_top1 is None or row.top1 > best_top1)
        if improved:
            best_top1, best_epoch = row.top1, epoch
        if ckpts is not None:
            state = replace(run_state, epoch=epoch, global_step=global_step, best_top1=best_top1,
                            best_epoch=best_epoch)
            if epoch % cfg.ckpt_save_interval == 0 or last_epoch:
                ckpts.save_epoch(net, opt, state)
            if improved:
                ckpts.save_best(net, opt, state, row.top1)
        if row.top1 is not None:
            metrics = {k: v for k, v in asdict(row).items() if v is not None}
            if any(cb(epoch, metrics) for cb in callbacks):
                stopped_cb = True
                log.note(f"stopped after epoch {epoch} at a callback's request")
                break
        if stopped_steps:
            log.note(f"stopped at max_steps {cfg.max_steps} (epoch {epoch})")
            break

    compile_s = None
    if first_step_s is not None and step_times:
        compile_s = max(first_step_s - statistics.median(step_times), 0.0)
    result = TrainResult(
        top1=last_eval.top1 if last_eval else None, top5=last_eval.top5 if last_eval else None,
        loss=last_eval.loss if last_eval else None, curve=curve,
        img_per_s=global_batch / statistics.median(step_times) if step_times else None, compile_s=compile_s,
        epochs=epoch if curve else start_epoch, global_step=global_step,
        best_top1=best_top1, best_epoch=best_epoch, loss_sum=float(np.sum(all_losses)), loss_steps=len(all_losses),
        final_train_loss=float(np.mean(all_losses[-max(1, len(all_losses) // 10):])) if all_losses else None,
        stopped_by_callback=stopped_cb, stopped_by_max_steps=stopped_steps, ckpt_dir=str(save_dir), network=net)
    return _finish(cfg, ctx, net, label, save_dir, log, result, val_loader, evaluated=last_eval is not None)


def _resume(cfg: TrainConfig, save_dir: Path, label: str, net, opt, run_state: RunState, steps_per_epoch: int,
            lrs: Sequence[float], log: RunLog) -> ResumeState:
    """Restore what ``ckpt_path`` (or, with ``auto_resume``, the newest checkpoint in ``save_dir``) holds."""
    from mindspore import Tensor

    path: Optional[Path] = Path(cfg.ckpt_path) if cfg.ckpt_path else None
    with_optimizer = cfg.resume_opt
    if cfg.auto_resume:
        found, skipped = latest_checkpoint(save_dir, label)
        for note in skipped:
            log.note(f"auto_resume: skipping {note}")
        if found is not None:
            path, with_optimizer = found, True
        else:
            log.note(f"auto_resume: no checkpoint of {label} in {save_dir}; "
                     + (f"starting from {path}" if path else "starting a new run"))
    if path is None:
        return ResumeState(epoch=0, global_step=0)
    state = restore(path, net, opt if with_optimizer else None, expected=run_state)
    if state is None:
        log.note(f"loaded weights from {path} (optimizer starts fresh; --resume_opt True resumes it)")
        return ResumeState(epoch=0, global_step=0)
    if not state.optimizer_restored:
        log.note(f"{path} holds weights only (no optimizer state): training them from epoch 0 "
                 "with a fresh optimizer")
        return ResumeState(epoch=0, global_step=0)
    if state.global_step != state.epoch * steps_per_epoch:
        # Another batch size, subset or device count than the saved run: continue the schedule
        # at the epoch boundary of this run's steps.
        log.note(f"{path} was saved at step {state.global_step} of epoch {state.epoch}; with "
                 f"{steps_per_epoch} steps per epoch now, continuing at step {state.epoch * steps_per_epoch}")
        state = replace(state, global_step=state.epoch * steps_per_epoch)
        opt.global_step.set_data(Tensor(np.full(opt.global_step.shape, state.global_step, dtype=np.int32)))
    epoch = min(state.epoch, cfg.epoch_size)
    log.event("resume", f"resumed from {path}: epoch {state.epoch} done, global step {state.global_step}, "
              f"next lr {lrs[min(state.global_step, len(lrs) - 1)]:.6g}"
              + (f", best top1 so far {state.best_top1:.2f} (epoch {state.best_epoch})"
                 if state.best_top1 is not None else ""),
              epoch=state.epoch, global_step=state.global_step, path=str(path), best_top1=state.best_top1)
    return replace(state, epoch=epoch)


def _check_ranks_agree(global_step: int, ctx: Context) -> None:
    """Every rank must resume at the same step (e.g. auto_resume on hosts without a shared folder)."""
    mean = float(all_reduce_sum(np.array([global_step]), ctx)[0]) / ctx.group_size
    spread = float(all_reduce_sum(np.array([(global_step - mean) ** 2]), ctx)[0])
    if spread > 0.0:
        raise UserError(f"the ranks resume from different steps (this rank: {global_step}, mean {mean:g}); "
                        "give every rank the same checkpoint (--ckpt_path, or a ckpt_save_dir they share)")


def _finish(cfg, ctx, net, label, save_dir, log, result: TrainResult, val_loader, evaluated: bool) -> TrainResult:
    if not evaluated and cfg.epoch_size > 0:
        final = evaluate(net, val_loader.dataset, ctx)
        result.top1, result.top5, result.loss = final.top1, final.top5, final.loss
    if cfg.export and ctx.is_main:
        out = export_network(net, save_dir / label, cfg.export, resolution=cfg.image_resize)
        result.exported = str(out)
        log.event("export", f"exported {cfg.export} to {out}", path=str(out), format=cfg.export)
    summary = (f"done: {result.epochs} epochs, {result.global_step} steps"
               + (f", val top1 {result.top1:.2f} top5 {result.top5:.2f} loss {result.loss:.4f}"
                  if result.top1 is not None else "")
               + (f", best top1 {result.best_top1:.2f} (epoch {result.best_epoch})" if result.best_top1 else "")
               + (f", {result.img_per_s:.1f} img/s after compile" if result.img_per_s else "")
               + (f", compile {result.compile_s:.1f} s" if result.compile_s is not None else ""))
    log.event("end", summary, **result.to_dict())
    return result


def validate(config: Union[TrainConfig, Mapping[str, Any], None] = None, *, arch: Optional[Arch] = None,
             **overrides: Any) -> EvalMetrics:
    """Top-1/top-5/loss of the checkpoint ``ckpt_path`` on the ``val_split`` folder; every image once."""
    from space import load_weights

    # One process evaluates every image once; the recipes' distribute: True is for train.py under msrun.
    cfg = make_config(config, **overrides).replace(distribute=False)
    if not cfg.ckpt_path:
        raise UserError("validate needs --ckpt_path (the checkpoint to evaluate)")
    cfg, ctx = setup(cfg)
    arch = arch if arch is not None else resolve_arch(cfg.arch or cfg.model)
    _, val_loader = _loaders(cfg, ctx, need_train=False)
    net = build(arch, num_classes=_num_classes(cfg, val_loader), fast_cpu=cfg.fast_cpu)
    load_weights(net, cfg.ckpt_path)
    metrics = evaluate(net, val_loader.dataset, ctx)
    if metrics.count != val_loader.num_samples:
        raise RuntimeError(f"evaluated {metrics.count} images but the val set has {val_loader.num_samples}")
    return metrics
