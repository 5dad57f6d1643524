"""The paper's Figure 3 experiment: validation loss per epoch with and without online hard sample mining.

    python -m fastmtcnn.training.ohem_study RUN_DIR --stage pnet --seeds 0,1,2 --epochs 8 --out ohem.png

Trains the stage from scratch for the face/non-face task only (alphas 1, 0, 0, as the paper's Fig. 3a) on
RUN_DIR/samples/<stage>.npz, once with OHEM 0.7 and once without for every seed (the seed sets the
initialisation, the batches and the `--max-samples` subset, the same for both arms), and measures the
classification loss on RUN_DIR/samples/<stage>_val.npz (crops of held-out images, no OHEM) after every epoch.
Writes a JSON of every curve and a PNG with the mean and the min-max band over the seeds.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch

from .loop import TrainConfig, train
from .loss import CLASSIFICATION_ONLY
from .nets import build_net
from .samples import NEGATIVE, POSITIVE, SampleSet

ARMS = {"OHEM 0.7": 0.7, "no OHEM": None}


def run_study(run_dir: Path, stage: str, seeds: Sequence[int], epochs: int, lr: float, optimizer: str,
              max_samples: int = None, batch_size: int = 384) -> Dict:
    """{"curves": {arm: [[val cls loss per epoch] per seed]}, "validation_samples": n, ...}."""
    samples = SampleSet.load(Path(run_dir) / "samples" / f"{stage}.npz")
    validation = SampleSet.load(Path(run_dir) / "samples" / f"{stage}_val.npz")
    scored = int(np.isin(validation.kinds, (NEGATIVE, POSITIVE)).sum())
    curves: Dict[str, List[List[float]]] = {arm: [] for arm in ARMS}
    for seed in seeds:
        subset = samples.subset(max_samples, seed)
        for arm, ohem in ARMS.items():
            net = build_net(stage, torch.Generator().manual_seed(seed))
            config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, ohem=ohem,
                                 alphas=CLASSIFICATION_ONLY, seed=seed, patience=None, schedule="constant")
            history = train(net, subset, config, validation=validation)
            curves[arm].append([record["val_cls"] for record in history.epochs])
            print(f"{stage} seed {seed} {arm}: " + " ".join(f"{v:.4f}" for v in curves[arm][-1]), flush=True)
    return {"stage": stage, "seeds": list(seeds), "epochs": epochs, "lr": lr, "optimizer": optimizer,
            "batch_size": batch_size,
            "training_samples": len(samples.subset(max_samples, seeds[0])), "validation_samples": scored,
            "curves": curves}


def compare_arms(study: Dict) -> Dict:
    """Per epoch: each arm's mean and min-max over the seeds of the validation loss, and where OHEM's mean is
    lower ("ohem_lower") and where its worst seed is below the other arm's best ("beyond_spread")."""
    (_, ohem_runs), (_, plain_runs) = study["curves"].items()  # "OHEM 0.7" first, as ARMS
    ohem, plain = np.array(ohem_runs), np.array(plain_runs)
    rows = [{"epoch": epoch + 1, **{f"{name}_{stat}": float(getattr(values[:, epoch], stat)())
                                    for name, values in (("ohem", ohem), ("plain", plain))
                                    for stat in ("mean", "min", "max")}}
            for epoch in range(ohem.shape[1])]
    return {"epochs": rows, "ohem_lower": [r["epoch"] for r in rows if r["ohem_mean"] < r["plain_mean"]],
            "beyond_spread": [r["epoch"] for r in rows if r["ohem_max"] < r["plain_min"]],
            "plain_beyond_spread": [r["epoch"] for r in rows if r["plain_max"] < r["ohem_min"]]}


def describe_comparison(comparison: Dict) -> str:
    """One plain sentence from `compare_arms`."""
    epochs = len(comparison["epochs"])
    if comparison["beyond_spread"]:
        return (f"OHEM's validation loss is below every seed without OHEM at epochs {comparison['beyond_spread']} "
                f"of {epochs} (mean lower at {comparison['ohem_lower']}): OHEM helps there.")
    if comparison["plain_beyond_spread"]:
        return (f"Without OHEM the validation loss is below every OHEM seed at epochs "
                f"{comparison['plain_beyond_spread']} of {epochs}: OHEM does not help here.")
    return (f"The arms' seed ranges overlap at every one of {epochs} epochs (OHEM's mean lower at "
            f"{comparison['ohem_lower']}): no difference beyond the seed spread.")


def plot_study(studies: Sequence[Dict], out: Path) -> Path:
    """One panel per study: mean validation classification loss per epoch, min-max band over the seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(studies), figsize=(4.6 * len(studies), 3.4), squeeze=False)
    for axis, study in zip(axes[0], studies):
        for index, (arm, runs) in enumerate(study["curves"].items()):
            values = np.array(runs)
            epochs = np.arange(1, values.shape[1] + 1)
            axis.plot(epochs, values.mean(axis=0), "-o", ms=3, color=f"C{index}", label=f"{arm} (mean)")
            axis.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=f"C{index}", alpha=0.2)
        axis.set_title(f"{study['stage']}: {len(study['seeds'])} seeds, {study['validation_samples']} val samples")
        axis.set_xlabel("epoch")
        axis.set_ylabel("validation face/non-face loss")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return Path(out)


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description="OHEM on/off validation curves (the paper's Fig. 3).")
    parser.add_argument("run", type=Path, help="a `fastmtcnn train` folder with samples/<stage>[_val].npz")
    parser.add_argument("--stage", default="pnet", choices=("pnet", "rnet", "onet"))
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--optimizer", default="adam", choices=("sgd", "adam"))
    parser.add_argument("--max-samples", type=int, default=None, help="seeded subset of the training samples")
    parser.add_argument("--batch-size", type=int, default=384)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, required=True, help="curves are written (and reused) here")
    parser.add_argument("--out", type=Path, default=None, help="PNG of every --json given so far")
    parser.add_argument("--also", type=Path, action="append", default=[], help="other studies' JSON to draw")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.json.exists():
        study = run_study(args.run, args.stage, [int(s) for s in args.seeds.split(",")], args.epochs, args.lr,
                          args.optimizer, args.max_samples, args.batch_size)
        args.json.write_text(json.dumps(study, indent=1) + "\n")
    print(describe_comparison(compare_arms(json.loads(args.json.read_text()))))
    if args.out:
        studies = [json.loads(path.read_text()) for path in [*args.also, args.json]]
        print(plot_study(studies, args.out))


if __name__ == "__main__":
    main()
