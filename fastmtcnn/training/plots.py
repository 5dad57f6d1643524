"""Loss curves from training runs (matplotlib, in the `train` extra).

    python -m fastmtcnn.training.plots RUN_DIR [RUN_DIR ...] --out curves.png

One panel per stage: per-epoch training (solid) and validation (dashed) values of every run, from each run's
train_summary.json: losses, and the validation metrics (nme, recall, fp_rate); folder names label the lines.
`fastmtcnn train` writes RUN_DIR/curves.png itself at the end of a run.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Sequence

STAGES = ("pnet", "rnet", "onet")


def read_histories(run_dir: Path) -> Dict[str, List[Dict[str, float]]]:
    """{stage: per-epoch records} of one run folder; the validation metrics of the initial weights, when
    the summary has them, come first as epoch -1 (drawn at 0)."""
    summary = json.loads((Path(run_dir) / "train_summary.json").read_text())
    histories = {}
    for stage, result in summary["stages"].items():
        before = [dict({f"val_{key}": value for key, value in result["before"].items()}, epoch=-1)] \
            if result.get("before") else []
        histories[stage] = before + result["history"]
    return histories


def plot_runs(run_dirs: Sequence[Path], out: Path, keys: Sequence[str] = ("loss",)) -> Path:
    """Write a PNG with one column per stage trained in any of the runs and one row per key (a key's
    train_ and val_ values by epoch, 0 = the initial weights; keys absent from a run are left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {Path(run).name: read_histories(Path(run)) for run in run_dirs}
    stages = [stage for stage in STAGES if any(histories.get(stage) for histories in runs.values())]
    if not stages:
        raise ValueError("no trained stage in these runs: pass folders written by `fastmtcnn train`")
    figure, axes = plt.subplots(len(keys), len(stages), figsize=(4.2 * len(stages), 3.0 * len(keys)), squeeze=False)
    for row, key in enumerate(keys):
        for axis, stage in zip(axes[row], stages):
            for index, (name, histories) in enumerate(runs.items()):
                history = histories.get(stage, [])
                epochs = [record["epoch"] + 1 for record in history]
                for prefix, style in (("train", "-o"), ("val", "--s")):
                    points = [(e, r[f"{prefix}_{key}"]) for e, r in zip(epochs, history) if f"{prefix}_{key}" in r]
                    if points:
                        axis.plot(*zip(*points), style, color=f"C{index}", ms=3, label=f"{name} {prefix}")
            axis.set_title(f"{stage} {key}")
            axis.set_xlabel("epoch (0: initial weights)")
            axis.xaxis.get_major_locator().set_params(integer=True)
            axis.grid(alpha=0.3)
            if axis.lines:
                axis.legend(fontsize=7)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description="Loss curves of fastmtcnn training runs.")
    parser.add_argument("runs", nargs="+", type=Path, help="folders written by fastmtcnn train")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--keys", default="loss", help="comma-separated: loss, cls, box, landmark, accuracy, nme, nme_scatter, recall, fp_rate")
    args = parser.parse_args(argv)
    print(plot_runs(args.runs, args.out, args.keys.split(",")))


if __name__ == "__main__":
    main()
