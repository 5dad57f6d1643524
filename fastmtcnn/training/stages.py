"""The whole cascade, stage after stage, into one weights folder: P-Net on random crops, then R-Net on what
the trained P-Net proposes, then O-Net on what P-Net + R-Net propose (the paper's order).

A seeded share of the images (by image) is held out: its crops, cut the same way, are each stage's
validation set, never trained on. The cascade being trained lives in `<out>/work/` (the initial weights until
a stage is trained; the mining cascade loads it); only when every planned stage is done is the set copied
into `<out>/` file by file with atomic renames, so `Detector(weights=DIR)` never loads a half-trained folder.
Layout: det*.prototxt/.caffemodel, work/, samples/<stage>.npz and <stage>_val.npz (reused on resume),
checkpoints/<stage>.pt, train_log.jsonl (loss log), train_summary.json (sample counts, histories, times by
phase, validation before/after), curves.png (with matplotlib).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from .cascade_validation import CascadeValidation
from .composites import synthetic_composites
from .export import export_net, load_net, publish_weights
from .loop import History, TrainConfig, train
from .nets import STEMS, build_net
from .readers import FaceRecord, split_records
from .samples import Mining, Quota, SampleSet, stage_samples, synthetic_backgrounds

STAGES = ("pnet", "rnet", "onet")
#: P-Net and R-Net as released have no landmark head, so they get no landmark faces (3 : 1 : 1).
DEFAULT_QUOTAS = {"pnet": Quota(3, 1, 1, 0), "rnet": Quota(3, 1, 1, 0), "onet": Quota(3, 1, 1, 2)}

#: progress(stage, phase, total) -> update(n, terms) callback, or None.
ProgressFactory = Callable[[str, str, int], Callable[..., None]]


@dataclass
class CascadeTraining:
    """What `train_cascade` does: stages in order, initial weights ("shipped", "scratch" or a weights
    folder), per-stage configs and quotas, mining settings, synthetic face-free images."""

    stages: Sequence[str] = STAGES
    init: str = "shipped"
    configs: Dict[str, TrainConfig] = field(default_factory=dict)
    quotas: Dict[str, Quota] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    mining_min_face: Optional[float] = None  # None: per image, samples.mining_min_face
    mining_thresholds: Tuple[float, float, float] = (0.6, 0.7, 0.7)
    backgrounds: int = 200
    composites: int = 0  # seeded multi-face composites of the training images (composites.py)
    composite_stages: Sequence[str] = ("pnet", "rnet")  # the stages that train on them
    max_samples: Optional[int] = None  # a seeded random subset per stage (quick experiments)
    max_images: Optional[int] = None  # train on the first N images that are not held out
    val_fraction: float = 0.1  # share of the images held out for validation (at most 600 images)
    workers: int = 1  # processes cutting and mining samples
    seed: int = 0

    def __post_init__(self):
        unknown = [stage for stage in self.stages if stage not in STAGES]
        if unknown or not self.stages:
            raise ValueError(f"stages must be among {', '.join(STAGES)}, got {list(self.stages)}")
        self.stages = [stage for stage in STAGES if stage in self.stages]


def initial_net(stage: str, init: str, seed: int):
    """The starting weights of a stage: the shipped ones, random ones (seeded), or a weights folder's."""
    if init == "shipped":
        return load_net(stage)
    if init == "scratch":
        return build_net(stage, torch.Generator().manual_seed(seed + STAGES.index(stage)))
    if not Path(init).is_dir():
        raise ValueError(f"init must be 'shipped', 'scratch' or a weights folder, got {init!r}")
    return load_net(stage, init)


def train_cascade(records: Sequence[FaceRecord], out_dir: Path, plan: CascadeTraining,
                  progress: Optional[ProgressFactory] = None) -> Dict:
    """Train the planned stages on `records` into `out_dir`; returns (and writes) the summary."""
    out = Path(out_dir)
    work = out / "work"
    for folder in (out / "samples", out / "checkpoints", work):
        folder.mkdir(parents=True, exist_ok=True)
    summary_path = out / "train_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {"stages": {}}
    training, held_out = split_records(records, plan.val_fraction, plan.seed)
    training = training[:plan.max_images] if plan.max_images else training
    summary.update(init=plan.init, images=len(training), validation_images=len(held_out),
                   backgrounds=plan.backgrounds, seed=plan.seed)
    for stage in STAGES:  # the working cascade is complete from the start
        if not (work / f"{STEMS[stage]}.caffemodel").exists():
            export_net(initial_net(stage, plan.init, plan.seed), work)
    sets = {"train": list(training) + synthetic_backgrounds(plan.backgrounds, plan.seed),
            "val": list(held_out) + synthetic_backgrounds(plan.backgrounds // 10, plan.seed + 1)}
    composites = synthetic_composites(training, plan.composites, plan.seed)  # after the real images: same seeds
    summary.update(composites=plan.composites, composite_stages=list(plan.composite_stages))
    for stage in plan.stages:
        config = plan.configs.get(stage, TrainConfig())
        started = time.perf_counter()
        records = sets["train"] + (composites if stage in plan.composite_stages else [])
        samples = _stage_samples(records, stage, plan, work, out / "samples" / f"{stage}.npz", progress)
        validation = _stage_samples(sets["val"], stage, plan, work, out / "samples" / f"{stage}_val.npz", progress,
                                    "validation samples")
        sampled = time.perf_counter()
        net = initial_net(stage, plan.init, plan.seed)
        update = progress(stage, "train", _planned_samples(net, samples, config)) if progress else None
        cascade = CascadeValidation(held_out, work) if config.select == "cascade" and stage == "onet" else None
        history = train(net, samples, config, out / "checkpoints" / f"{stage}.pt", out / "train_log.jsonl", update,
                        validation, cascade)
        trained = time.perf_counter()
        export_net(net, work)
        summary["stages"][stage] = _stage_summary(summary["stages"].get(stage, {}), samples, validation, config,
                                                  history, (started, sampled, trained, time.perf_counter()))
        summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    publish_weights(work, out)
    _write_curves(out)
    return summary


def _planned_samples(net, samples: SampleSet, config: TrainConfig) -> int:
    from .loop import steps_per_epoch

    index = np.arange(len(samples))
    return config.epochs * steps_per_epoch(samples, index, config, net.landmarks_blob is not None) * config.batch_size


def _stage_summary(before: Dict, samples: SampleSet, validation: SampleSet, config: TrainConfig, history: History,
                   times: Tuple[float, float, float, float]) -> Dict:
    """One stage's summary entry; times (start, sampled, trained, exported) add to those of a resumed run."""
    started, sampled, trained, exported = times
    validating = sum(record.get("validation_seconds", 0.0) for record in history.epochs[history.resumed_epochs:])
    phases = {"sampling_seconds": sampled - started, "training_seconds": trained - sampled - validating,
              "validation_seconds": validating, "export_seconds": exported - trained}
    return {"samples": samples.counts(), "validation_samples": validation.counts(), "config": asdict(config),
            "history": history.epochs, "before": history.before, "after": history.best(),
            "best_epoch": history.best_epoch, "kept_initial": history.kept_initial,
            "stopped_early": history.stopped_early, "convention_shift": history.convention_shift,
            **{key: before.get(key, 0.0) + value for key, value in phases.items()}}


def _write_curves(out: Path) -> None:
    try:
        from .plots import plot_runs
    except ImportError:
        return
    try:
        plot_runs([out], out / "curves.png", ("loss", "nme", "recall"))
    except ImportError:  # no matplotlib: the summary still has every figure
        pass


def _stage_samples(records: Sequence[FaceRecord], stage: str, plan: CascadeTraining, work: Path, cache: Path,
                   progress: Optional[ProgressFactory], phase: str = "samples") -> SampleSet:
    if cache.exists():
        samples = SampleSet.load(cache)
    else:
        mining = None if stage == "pnet" else Mining(stage, str(work), plan.mining_min_face, plan.mining_thresholds)
        update = progress(stage, phase, len(records)) if progress else None
        seed = plan.seed + STAGES.index(stage) + (100 if phase != "samples" else 0)
        samples = stage_samples(records, stage, plan.quotas.get(stage, DEFAULT_QUOTAS[stage]), seed, mining, update,
                                plan.workers)
        samples.save(cache)
    return samples if phase != "samples" else samples.subset(plan.max_samples, plan.seed)
