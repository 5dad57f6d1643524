"""The training loop of one stage: SGD or Adam, a learning-rate schedule, deterministic seeds,
per-epoch checkpoints with resume, a validation split and a JSON-lines loss log.

Nothing here prints: progress goes to an optional callback (the CLI draws a tqdm bar with it).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from .loss import check_ohem, multitask_loss
from .nets import MTCNNNet
from .samples import SampleSet, to_caffe_orientation

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

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise ValueError("epochs >= 1, batch_size >= 2 and lr > 0 are needed")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in [0, 0.5), got {self.val_fraction}")
        self.ohem = check_ohem(self.ohem)
        self.alphas = tuple(float(a) for a in self.alphas)


@dataclass
class History:
    """Per-epoch means of the training losses and the validation losses/accuracy (no OHEM on validation)."""

    epochs: List[Dict[str, float]] = field(default_factory=list)


def make_optimizer(net: MTCNNNet, config: TrainConfig) -> torch.optim.Optimizer:
    # Weight decay on kernels only (not on biases or PReLU slopes), as Caffe's decay_mult 0 on those.
    kernels = [p for name, p in net.named_parameters() if name.endswith("weight") and p.dim() > 1]
    others = [p for name, p in net.named_parameters() if not (name.endswith("weight") and p.dim() > 1)]
    groups = [{"params": kernels, "weight_decay": config.weight_decay}, {"params": others, "weight_decay": 0.0}]
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)


def make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    total = config.epochs * steps_per_epoch
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    if config.schedule == "step":
        milestones = [int(total * 0.5), int(total * 0.75)]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def split_validation(samples: SampleSet, fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices), a seeded random split."""
    order = np.random.default_rng(seed).permutation(len(samples))
    count = int(round(fraction * len(samples)))
    return np.sort(order[count:]), np.sort(order[:count])


def _batch(samples: SampleSet, index: np.ndarray, device: str = "cpu") -> Tuple[torch.Tensor, ...]:
    arrays = (to_caffe_orientation(samples.images[index]), samples.kinds[index].astype(np.int64),
              samples.offsets[index], samples.landmarks[index])
    return tuple(torch.from_numpy(array).to(device) for array in arrays)


def evaluate_samples(net: MTCNNNet, samples: SampleSet, index: np.ndarray, alphas, batch_size: int = 1024,
                     device: str = "cpu") -> Dict[str, float]:
    """Mean losses and classification accuracy over `index`, in eval mode, without OHEM."""
    if not len(index):
        return {}
    net.eval()
    sums: Dict[str, float] = {}
    with torch.no_grad():
        for start in range(0, len(index), batch_size):
            part = index[start:start + batch_size]
            images, kinds, offsets, points = _batch(samples, part, device)
            total, terms = multitask_loss(net(images), kinds, offsets, points, alphas, ohem=None)
            for key, value in dict(terms, loss=float(total)).items():
                sums[key] = sums.get(key, 0.0) + value * len(part)
    net.train()
    return {key: value / len(index) for key, value in sums.items()}


def _save_checkpoint(path: Path, net, optimizer, schedule, epoch: int, history: History, config: TrainConfig):
    state = {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
             "epoch": epoch, "history": history.epochs, "config": asdict(config)}
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    temporary.replace(path)


def train(net: MTCNNNet, samples: SampleSet, config: TrainConfig, checkpoint: Optional[Path] = None,
          log: Optional[Path] = None, progress: Optional[Callable[[int, Dict[str, float]], None]] = None
          ) -> History:
    """Train `net` in place on `samples`; returns the per-epoch history.

    checkpoint: file written after every epoch; if it exists, training resumes after its last epoch (same
    config and samples give the same result as an uninterrupted run: batches are shuffled by (seed, epoch)).
    log: JSON-lines file, one line per `log_every` batches and one per epoch. progress(batches_done, terms)
    is called after every batch.
    """
    torch.manual_seed(config.seed)
    net.to(config.device)
    train_index, val_index = split_validation(samples, config.val_fraction, config.seed)
    steps = max(1, math.ceil(len(train_index) / config.batch_size))
    optimizer = make_optimizer(net, config)
    schedule = make_schedule(optimizer, config, steps)
    history, first_epoch = History(), 0
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location=config.device, weights_only=False)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        history.epochs, first_epoch = list(state["history"]), state["epoch"] + 1
    net.train()
    for epoch in range(first_epoch, config.epochs):
        torch.manual_seed(config.seed * 1000 + epoch)  # dropout masks
        order = np.random.default_rng((config.seed, epoch)).permutation(train_index)
        started, sums = time.perf_counter(), {}
        for step in range(steps):
            index = np.sort(order[step * config.batch_size:(step + 1) * config.batch_size])
            if len(index) < 2:
                continue
            images, kinds, offsets, points = _batch(samples, index, config.device)
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
                progress(1, terms)
        record = {f"train_{key}": value / steps for key, value in sums.items() if key != "lr"}
        record.update({f"val_{key}": value for key, value in
                       evaluate_samples(net, samples, val_index, config.alphas, device=config.device).items()})
        record.update(epoch=epoch, seconds=time.perf_counter() - started, lr=optimizer.param_groups[0]["lr"])
        history.epochs.append(record)
        if log is not None:
            _append(log, dict(record, stage=net.stage, kind="epoch"))
        if checkpoint is not None:
            _save_checkpoint(Path(checkpoint), net, optimizer, schedule, epoch, history, config)
    net.to("cpu").eval()
    return history


def _append(path: Path, record: Dict) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
