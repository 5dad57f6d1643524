"""The whole cascade, stage after stage, into one weights folder: P-Net on random crops, then R-Net on what
the trained P-Net proposes, then O-Net on what P-Net + R-Net propose (the paper's order).

The folder always holds a complete det1/det2/det3 set (the initial weights until a stage is trained), so
the cascade that mines the next stage's samples, and `Detector(weights=DIR)`, can load it at any time.
Layout: det*.prototxt/.caffemodel, samples/<stage>.npz (reused on resume), checkpoints/<stage>.pt,
train_log.jsonl (loss log), train_summary.json (sample counts, histories, times).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

from .export import export_net, load_net
from .loop import TrainConfig, train
from .nets import STEMS, build_net
from .readers import FaceRecord
from .samples import Quota, SampleSet, cascade_proposer, stage_samples, synthetic_backgrounds

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
    max_samples: Optional[int] = None  # a seeded random subset per stage (quick experiments)
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
    (out / "samples").mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)
    summary_path = out / "train_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {"stages": {}}
    summary.update(init=plan.init, images=len(records), backgrounds=plan.backgrounds, seed=plan.seed)
    for stage in STAGES:  # a complete weights set from the start
        if not (out / f"{STEMS[stage]}.caffemodel").exists():
            export_net(initial_net(stage, plan.init, plan.seed), out)
    all_records = list(records) + synthetic_backgrounds(plan.backgrounds, plan.seed)
    for stage in plan.stages:
        config = plan.configs.get(stage, TrainConfig())
        started = time.perf_counter()
        samples = _stage_samples(all_records, stage, plan, out, progress)
        sampled = time.perf_counter()
        checkpoint = out / "checkpoints" / f"{stage}.pt"
        net = initial_net(stage, plan.init, plan.seed)
        steps = config.epochs * -(-int(len(samples) * (1 - config.val_fraction)) // config.batch_size)
        update = progress(stage, "train", steps) if progress else None
        history = train(net, samples, config, checkpoint, out / "train_log.jsonl", update)
        export_net(net, out)
        before = summary["stages"].get(stage, {})  # a resumed stage adds to the time already spent
        summary["stages"][stage] = {
            "samples": samples.counts(), "config": asdict(config), "history": history.epochs,
            "sampling_seconds": before.get("sampling_seconds", 0.0) + sampled - started,
            "training_seconds": before.get("training_seconds", 0.0) + time.perf_counter() - sampled}
        summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _stage_samples(records: Sequence[FaceRecord], stage: str, plan: CascadeTraining, out: Path,
                   progress: Optional[ProgressFactory]) -> SampleSet:
    cache = out / "samples" / f"{stage}.npz"
    if cache.exists():
        return SampleSet.load(cache).subset(plan.max_samples, plan.seed)
    propose = None if stage == "pnet" else cascade_proposer(stage, str(out), plan.mining_min_face,
                                                               plan.mining_thresholds)
    update = progress(stage, "samples", len(records)) if progress else None
    samples = stage_samples(records, stage, plan.quotas.get(stage, DEFAULT_QUOTAS[stage]),
                            plan.seed + STAGES.index(stage), propose, update)
    samples.save(cache)
    return samples.subset(plan.max_samples, plan.seed)
