"""The training loop of one stage: SGD or Adam, warm-up and a learning-rate schedule, mini-batches in the
paper's sample mix, deterministic seeds, per-epoch validation metrics with the best epoch kept and early
stopping, per-epoch checkpoints with resume, and a JSON-lines loss log.

Nothing here prints: progress goes to an optional callback (the CLI draws a tqdm bar with it).
"""
from __future__ import annotations

import json
import math
import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .augment import flip_landmark_faces, jitter_batch
from .loss import check_ohem, multitask_loss
from .nets import MTCNNNet, check_dropout, set_dropout
from .samples import LANDMARK, NEGATIVE, PAPER_RATIO, PART, POSITIVE, SampleSet, to_caffe_orientation
from .validation import (DETECTION_SLACK, SELECTIONS, STAGE_THRESHOLDS, detection_holds, selection_score,
                         stage_metrics)

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("step", "cosine", "constant")


@dataclass
class TrainConfig:
    """How one stage is trained. lr decays x0.1 at 50% and 75% of the epochs ("step") or along a cosine."""

    epochs: int = 10
    batch_size: int = 384
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "step"
    ohem: Optional[float] = 0.7
    alphas: Tuple[float, float, float] = (1.0, 0.5, 0.5)
    seed: int = 0
    val_fraction: float = 0.05
    log_every: int = 20  # batches between loss-log lines
    device: str = "cpu"  # a torch device ("cuda" on a GPU machine; only "cpu" is tested here)
    warmup_steps: int = 0  # lr rises linearly from lr / warmup_steps over the first steps
    mix: Optional[Tuple[int, int, int, int]] = PAPER_RATIO  # every batch in this neg:pos:part:landmark mix; None: shuffled
    patience: Optional[int] = 2  # stop after this many epochs without a better validation score; None: never
    keep_initial: bool = False  # fine-tuning: keep the initial weights unless validation improves on them
    detection_slack: float = DETECTION_SLACK  # with keep_initial: the recall an epoch may lose (and FP rate gain)
    keep_convention: bool = False  # landmark targets moved by the initial net's mean offset (see point_convention)
    select: str = "nme"  # landmark stages keep the epoch of the lowest "nme", "scatter" or "cascade" NME
    augment: bool = False  # jitter the training crops (augment.jitter_batch; seeded by (seed, epoch))
    flip: bool = False  # mirror half the landmark faces of every batch (augment.flip_landmark_faces; seeded)
    train_layers: Optional[Tuple[str, ...]] = None  # train only these layers (Caffe names, e.g. "conv6-1"); None: all
    dropout: Optional[float] = None  # ratio of O-Net's drop5 while training; None: the net's own (nets.DROPOUT)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise ValueError("epochs >= 1, batch_size >= 2 and lr > 0 are needed")
        if self.warmup_steps < 0 or (self.patience is not None and self.patience < 1):
            raise ValueError("warmup_steps >= 0 and patience >= 1 (or None) are needed")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in [0, 0.5), got {self.val_fraction}")
        if self.select not in SELECTIONS:
            raise ValueError(f"select must be one of {SELECTIONS}, got {self.select!r}")
        self.ohem = check_ohem(self.ohem)
        self.alphas = tuple(float(a) for a in self.alphas)
        self.train_layers = tuple(self.train_layers) if self.train_layers else None
        self.dropout = None if self.dropout is None else check_dropout(self.dropout)


@dataclass
class History:
    """Per-epoch means of the training losses and the validation metrics (no OHEM on validation); the
    validation metrics of the initial weights (`before`); the epoch whose weights were kept (`best_epoch`,
    -1 = the initial weights) and whether training stopped early."""

    epochs: List[Dict[str, float]] = field(default_factory=list)
    before: Dict[str, float] = field(default_factory=dict)
    best_epoch: Optional[int] = None
    stopped_early: bool = False
    convention_shift: List[float] = field(default_factory=lambda: [0.0] * 10)  # see point_convention
    resumed_epochs: int = 0  # epochs of `epochs` restored from a checkpoint (timed by the earlier run)

    @property
    def kept_initial(self) -> bool:
        return self.best_epoch == -1

    def best(self) -> Dict[str, float]:
        """The validation metrics of the weights kept."""
        if self.best_epoch is None:
            return {}
        if self.best_epoch < 0:
            return self.before
        record = next(r for r in self.epochs if r["epoch"] == self.best_epoch)
        return {key[4:]: value for key, value in record.items() if key.startswith("val_")}


def trainable_parameters(net: MTCNNNet, layers: Optional[Sequence[str]]) -> List[Tuple[str, torch.nn.Parameter]]:
    """(name, parameter) of the layers named in `layers` (Caffe layer names; None: every layer); the others
    are frozen (requires_grad False). ValueError for a name the net does not have."""
    names = {name.split(".")[1] for name, _ in net.named_parameters()}
    unknown = sorted(set(layers or ()) - names)
    if unknown:
        raise ValueError(f"{net.stage} has no layer {', '.join(unknown)}; its layers: {', '.join(sorted(names))}")
    chosen = []
    for name, parameter in net.named_parameters():
        parameter.requires_grad_(layers is None or name.split(".")[1] in layers)
        if parameter.requires_grad:
            chosen.append((name, parameter))
    return chosen


def make_optimizer(net: MTCNNNet, config: TrainConfig) -> torch.optim.Optimizer:
    # Weight decay on kernels only (not on biases or PReLU slopes), as Caffe's decay_mult 0 on those.
    named = trainable_parameters(net, config.train_layers)
    kernels = [p for name, p in named if name.endswith("weight") and p.dim() > 1]
    others = [p for name, p in named if not (name.endswith("weight") and p.dim() > 1)]
    groups = [{"params": kernels, "weight_decay": config.weight_decay}, {"params": others, "weight_decay": 0.0}]
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)


def lr_factor(step: int, total: int, config: TrainConfig) -> float:
    """The lr multiplier at `step` of `total`: linear warm-up, then step (x0.1 at 50% and 75%), cosine or 1."""
    warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    if config.schedule == "cosine":
        return warm * 0.5 * (1 + math.cos(math.pi * step / total))
    if config.schedule == "step":
        return warm * 0.1 ** sum(step >= int(total * share) for share in (0.5, 0.75))
    return warm


def make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    total = config.epochs * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total, config))


def trained_kinds(alphas, has_landmarks: bool) -> List[int]:
    """The sample kinds that carry a loss term with these alphas (beta of the paper): negatives and
    positives for classification, positives and part faces for boxes, landmark faces for points."""
    kinds = set()
    if alphas[0] > 0:
        kinds |= {NEGATIVE, POSITIVE}
    if alphas[1] > 0:
        kinds |= {POSITIVE, PART}
    if alphas[2] > 0 and has_landmarks:
        kinds.add(LANDMARK)
    return sorted(kinds)


def epoch_batches(kinds: np.ndarray, index: np.ndarray, config: TrainConfig, useful: Sequence[int],
                  epoch: int) -> List[np.ndarray]:
    """The mini-batches (sorted sample indices, int (b,)) of one epoch over the samples `index` (int (n,), into
    `kinds` int8 (N,)) of the `useful` kinds.

    With `config.mix`, every batch holds the kinds in that ratio (those present; the smaller kinds are
    cycled, so an epoch is as many batches as the useful samples fill); without, a plain shuffle."""
    rng = np.random.default_rng((config.seed, epoch))
    pools = [index[kinds[index] == kind] for kind in useful]
    weights = [config.mix[kind] if config.mix else 1 for kind in useful]
    pools, weights = zip(*[(p, w) for p, w in zip(pools, weights) if len(p) and w > 0]) if any(
        len(p) for p in pools) else ((), ())
    total = sum(len(p) for p in pools)
    steps = max(1, math.ceil(total / config.batch_size))
    if not config.mix or len(pools) < 2:
        order = rng.permutation(np.concatenate(pools)) if pools else np.zeros(0, int)
        return [np.sort(order[k * config.batch_size:(k + 1) * config.batch_size]) for k in range(steps)]
    shares = np.maximum(1, np.round(config.batch_size * np.array(weights) / sum(weights))).astype(int)
    streams = [np.resize(rng.permutation(pool), steps * share) for pool, share in zip(pools, shares)]
    return [np.sort(np.concatenate([stream[k * share:(k + 1) * share] for stream, share in zip(streams, shares)]))
            for k in range(steps)]


def steps_per_epoch(samples: SampleSet, index: np.ndarray, config: TrainConfig, has_landmarks: bool) -> int:
    """Batches of a plain epoch over the samples `index` (int (n,)) of the kinds this stage trains on."""
    useful = np.isin(samples.kinds[index], trained_kinds(config.alphas, has_landmarks))
    return max(1, math.ceil(int(useful.sum()) / config.batch_size))


def split_validation(samples: SampleSet, fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices), int64 sorted, a seeded random split; `fraction` of the samples
    (rounded) validate."""
    order = np.random.default_rng(seed).permutation(len(samples))
    count = int(round(fraction * len(samples)))
    return np.sort(order[count:]), np.sort(order[:count])


def _batch(samples: SampleSet, index: np.ndarray, device: str = "cpu",
           jitter: Optional[np.random.Generator] = None,
           flip: Optional[np.random.Generator] = None) -> Tuple[torch.Tensor, ...]:
    """(images, kinds, offsets, landmarks) tensors of the samples `index`, landmark faces mirrored with the
    generator `flip` (augment.flip_landmark_faces) and jittered with `jitter` (augment.jitter_batch) when given."""
    images, points = samples.images[index], samples.landmarks[index]
    if flip is not None:
        images, points = flip_landmark_faces(images, samples.kinds[index], points, flip)
    if jitter is not None:
        images, points = jitter_batch(images, samples.kinds[index], points, jitter)
    arrays = (to_caffe_orientation(images), samples.kinds[index].astype(np.int64), samples.offsets[index], points)
    return tuple(torch.from_numpy(array).to(device) for array in arrays)


def point_convention(net: MTCNNNet, samples: SampleSet, index: np.ndarray, batch_size: int = 1024,
                     device: str = "cpu") -> np.ndarray:
    """float32 (10,): the mean of (prediction - target) of `net` over the landmark faces among `index`, in box
    fractions (zeros when there are none or the net has no landmark head). Added to the targets, it keeps the
    net's point convention (where it puts an eye centre, a mouth corner) and trains only the scatter around
    it, for data annotated with another convention."""
    marked = index[samples.kinds[index] == LANDMARK]
    if net.landmarks_blob is None or not len(marked):
        return np.zeros(10, np.float32)
    net.eval()
    with torch.no_grad():
        predicted = np.concatenate([net(torch.from_numpy(to_caffe_orientation(samples.images[part])).to(device))
                                    .landmarks.cpu().numpy()
                                    for part in np.array_split(marked, max(1, len(marked) // batch_size))])
    net.train()
    return (predicted - samples.landmarks[marked]).mean(axis=0).astype(np.float32)


def _with_convention(samples: SampleSet, shift: np.ndarray) -> SampleSet:
    """A copy of `samples` whose landmark targets are moved by `shift` (10,)."""
    points = samples.landmarks.copy()
    points[samples.kinds == LANDMARK] += shift
    return SampleSet(samples.images, samples.kinds, samples.offsets, points, samples.mined)


def _save_checkpoint(path: Path, net, optimizer, schedule, epoch: int, history: History, config: TrainConfig,
                     best: Dict):
    state = {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
             "epoch": epoch, "history": history.epochs, "before": history.before, "best": best,
             "stopped_early": history.stopped_early, "config": asdict(config)}
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    temporary.replace(path)


def train(net: MTCNNNet, samples: SampleSet, config: TrainConfig, checkpoint: Optional[Path] = None,
          log: Optional[Path] = None, progress: Optional[Callable[[int, Dict[str, float]], None]] = None,
          validation: Optional[SampleSet] = None,
          cascade: Optional[Callable[[MTCNNNet], Dict[str, float]]] = None) -> History:
    """Train `net` in place on `samples`; returns the per-epoch history. On return `net` holds the weights
    of the best validation epoch (or, with `config.keep_initial`, the initial ones if no epoch was better).

    validation: held-out crops (from other images); None = a seeded `val_fraction` of `samples`.
    cascade: net -> more validation metrics (cascade_validation.CascadeValidation: the whole cascade on the
    held-out images), measured with the crops' before training and after every epoch.
    checkpoint: file written after every epoch; if it exists, training resumes after its last epoch (same
    config and samples give the same result as an uninterrupted run: batches are drawn by (seed, epoch)).
    log: JSON-lines file, one line per `log_every` batches and one per epoch. progress(samples_done, terms)
    is called after every batch.
    """
    torch.manual_seed(config.seed)
    net.to(config.device)
    if config.dropout is not None:
        set_dropout(net, config.dropout)
    if validation is None:
        train_index, val_index = split_validation(samples, config.val_fraction, config.seed)
        validation = samples
    else:
        train_index, val_index = np.arange(len(samples)), np.arange(len(validation))
    has_landmarks = net.landmarks_blob is not None
    shift = np.zeros(10, np.float32)
    if config.keep_convention:  # from the initial weights, also on resume (the checkpoint is loaded below)
        shift = point_convention(net, samples, train_index, device=config.device)
        samples, validation = _with_convention(samples, shift), _with_convention(validation, shift)
    useful = trained_kinds(config.alphas, has_landmarks)
    if not np.isin(samples.kinds[train_index], useful).any():
        raise ValueError(f"{net.stage}: no training sample carries a loss with alphas {config.alphas} "
                         "(e.g. landmark-only alphas on a stage without landmark faces)")
    steps = steps_per_epoch(samples, train_index, config, has_landmarks)
    optimizer = make_optimizer(net, config)
    schedule = make_schedule(optimizer, config, steps)
    threshold = STAGE_THRESHOLDS[net.stage]

    def measure() -> Dict[str, float]:
        metrics = stage_metrics(net, validation, val_index, config.alphas, threshold, device=config.device)
        return dict(metrics, **cascade(net)) if cascade is not None and metrics else metrics

    history, first_epoch = History(convention_shift=shift.tolist()), 0
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location=config.device, weights_only=False)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        history.epochs, first_epoch = list(state["history"]), state["epoch"] + 1
        history.resumed_epochs = len(history.epochs)
        history.before, history.stopped_early, best = state["before"], state["stopped_early"], state["best"]
    else:
        history.before = measure()
        best = {"epoch": None, "score": math.inf, "model": None}
        if config.keep_initial and history.before:
            best = {"epoch": -1, "score": selection_score(history.before, config.alphas, config.select),
                    "model": copy.deepcopy(net.state_dict())}
    net.train()
    for epoch in range(first_epoch, config.epochs):
        if history.stopped_early:
            break
        torch.manual_seed(config.seed * 1000 + epoch)  # dropout masks
        started, sums = time.perf_counter(), {}
        batches = epoch_batches(samples.kinds, train_index, config, useful, epoch)
        jitter = np.random.default_rng((config.seed, epoch, 1)) if config.augment else None
        flip = np.random.default_rng((config.seed, epoch, 2)) if config.flip else None
        for step, index in enumerate(batches):
            images, kinds, offsets, points = _batch(samples, index, config.device, jitter, flip)
            total, terms = multitask_loss(net(images), kinds, offsets, points, config.alphas, config.ohem)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            schedule.step()
            terms = dict(terms, loss=float(total.detach()), lr=optimizer.param_groups[0]["lr"])
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value
            if log is not None and step % config.log_every == 0:
                _append(log, dict(terms, stage=net.stage, epoch=epoch, step=step, steps=steps))
            if progress is not None:
                progress(len(index), terms)
        record = {f"train_{key}": value / len(batches) for key, value in sums.items() if key != "lr"}
        trained = time.perf_counter()
        metrics = measure()
        record.update({f"val_{key}": value for key, value in metrics.items()})
        record.update(epoch=epoch, seconds=trained - started, validation_seconds=time.perf_counter() - trained,
                      lr=optimizer.param_groups[0]["lr"], samples=int(sum(len(b) for b in batches)))
        history.epochs.append(record)
        if metrics:
            score = selection_score(metrics, config.alphas, config.select)
            eligible = detection_holds(metrics, history.before if config.keep_initial else None,
                                       config.detection_slack)
            if eligible and score < best["score"]:
                best = {"epoch": epoch, "score": score, "model": copy.deepcopy(net.state_dict())}
            elif config.patience is not None and epoch - (best["epoch"] if best["epoch"] is not None else -1) \
                    >= config.patience:
                history.stopped_early = True
        if log is not None:
            _append(log, dict(record, stage=net.stage, kind="epoch"))
        if checkpoint is not None:
            _save_checkpoint(Path(checkpoint), net, optimizer, schedule, epoch, history, config, best)
    history.best_epoch = best["epoch"] if best["model"] is not None else (history.epochs[-1]["epoch"]
                                                                           if history.epochs else None)
    if best["model"] is not None:
        net.load_state_dict(best["model"])
    net.to("cpu").eval()
    return history


def _append(path: Path, record: Dict) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
