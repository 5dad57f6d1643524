"""`fastmtcnn train`: the paper's three-stage training into a weights folder (needs `pip install "fastmtcnn[train]"`).

    fastmtcnn train --data A.jsonl [--data B.jsonl ...] --out DIR [--init shipped|scratch|DIR] [--stages ...]

`--init shipped` (the default) fine-tunes and `--init scratch` trains anew; each has its own defaults
(FINE_TUNE, SCRATCH), chosen by measurement (docs/training.md). Every run holds out a share of its images for
validation, keeps each stage's best epoch, stops early, and a fine-tune keeps a shipped stage that validation
does not find improved.

Then `fastmtcnn eval DATA.jsonl --weights DIR` or `Detector(weights=DIR)`. Torch is imported only when the
command runs, so `fastmtcnn --help` works without it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import List

from ..commands import add_command

OHEM_OFF = ("off", "none", "0", "1")
STAGE_NAMES = ("pnet", "rnet", "onet")

#: Defaults of a fine-tune (--init shipped or a weights folder). Measured (docs/training.md): O-Net's landmark
#: task alone at a low rate (the paper's alphas at lr 0.01 made held-out landmarks worse; the training set's
#: boxes, drawn tighter than MTCNN's, move P-Net/R-Net away from other sets' box convention). Its points are
#: trained and judged around the shipped convention (keep_convention, select "scatter"): a plain fine-tune on
#: the Sun set only moved the points toward Sun's convention (its scatter NME got worse) and made 300-W worse.
#: Only O-Net's landmark head (conv6-3) is refitted, without drop5's dropout (Adam 2e-4, 4 epochs): with dropout
#: every refit of the head raised the validation scatter NME (the head was fitted to noisy features the detector
#: never sees); without it, on the run's held-out 585 images, 5.072 -> 4.964% (seeds 0-2: 0.07-0.11 points lower),
#: where the whole net at SGD 2e-4 (the previous default) reached 5.068%.
FINE_TUNE = {"stages": ["onet"], "epochs": [4, 4, 4], "optimizer": "adam", "lr": 0.0002, "alphas": (0.0, 0.0, 1.0),
             "warmup": 0, "patience": 1, "per_image": 1.0, "keep_convention": True, "augment": False,
             "select": "scatter", "flip": False, "keep_initial": True, "train_layers": {"onet": ["conv6-3"]},
             "dropout": 0.0}
#: Defaults from scratch: every stage, the paper's alphas, Adam with warm-up (SGD at lr 0.01 to 0.05 left
#: R-Net on the all-negative solution where Adam 0.003 reached 74% recall in one short epoch,
#: tests/test_training.py), mixed batches, more epochs; O-Net's epoch chosen by the whole cascade's NME on the
#: held-out images (over 25 O-Nets it ranked as the Sun evaluation half did better than the crops' NME, Spearman
#: 0.988 against 0.975, and its recall follows Sun's where the crops' does not; docs/training.md).
SCRATCH = {"stages": ["pnet", "rnet", "onet"], "epochs": [10, 8, 8], "optimizer": "adam", "lr": 0.003,
           "alphas": None, "warmup": 200, "patience": 3, "per_image": 2.0, "keep_convention": False, "augment": False,
           "select": "cascade", "flip": False, "keep_initial": False, "train_layers": {}, "dropout": None}


def _ohem(text: str):
    if text.lower() in OHEM_OFF:
        return None
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError("--ohem takes a keep ratio in (0, 1) or 'off'")
    return value


def _epochs(text: str) -> List[int]:
    values = [int(part) for part in text.split(",")]
    if len(values) not in (1, 3) or min(values) < 1:
        raise argparse.ArgumentTypeError("--epochs takes N (every stage) or P,R,O (per stage), each >= 1")
    return values * 3 if len(values) == 1 else values


def _alphas(text: str) -> tuple:
    values = tuple(float(part) for part in text.split(","))
    if len(values) != 3 or min(values) < 0:
        raise argparse.ArgumentTypeError("--alphas takes det,box,landmark weights >= 0, e.g. 1,0.5,1")
    return values


def _stages(text: str) -> List[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_train_command(commands) -> None:
    """Register `train` on an argparse subparsers object."""
    parser = add_command(commands, "train", "train P-Net/R-Net/O-Net and export Caffe weights (needs [train])",
                         "Train the MTCNN cascade as in the paper (multi-task loss, OHEM, R-Net/O-Net samples "
                         "mined with the cascade) into a weights folder.")
    parser.add_argument("--data", action="append", default=[], metavar="JSONL",
                        help="annotation set in our JSONL format (repeatable); image paths relative to its folder")
    parser.add_argument("--wider", nargs=2, action="append", default=[], metavar=("GT_TXT", "IMAGES"),
                        help="WIDER FACE wider_face_*_bbx_gt.txt and its images folder (repeatable)")
    parser.add_argument("--celeba", nargs=3, action="append", default=[], metavar=("BBOX_TXT", "LANDMARKS_TXT", "IMAGES"),
                        help="CelebA list_bbox_celeba.txt, list_landmarks_celeba.txt and img_celeba folder")
    parser.add_argument("--out", type=Path, required=True, help="weights folder (det1/2/3 + logs); resumes if present")
    parser.add_argument("--stages", type=_stages, default=None,
                        help="stages to train, in cascade order (default: onet for a fine-tune, all from scratch)")
    parser.add_argument("--init", default="shipped", help="initial weights: shipped, scratch or a weights folder")
    parser.add_argument("--epochs", type=_epochs, default=None,
                        help="most epochs: N for every stage, or P,R,O (default 3 fine-tune, 10,8,8 scratch)")
    parser.add_argument("--patience", type=int, default=None,
                        help="stop a stage after this many epochs without a better validation score "
                             "(default 1 fine-tune, 3 scratch)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="linear lr warm-up steps (default 0 fine-tune, 200 scratch)")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="share of the images held out for validation (seeded, by image, at most 600)")
    parser.add_argument("--no-mix", action="store_true",
                        help="shuffle samples freely instead of every batch in the paper's 3:1:1:2 mix")
    parser.add_argument("--keep-convention", action=argparse.BooleanOptionalAction, default=None,
                        help="keep the initial O-Net's point convention: landmark targets are moved by its mean "
                             "offset on the training crops, so only the scatter of the points is trained "
                             "(default: on for a fine-tune, off from scratch)")
    parser.add_argument("--select", choices=("nme", "scatter", "cascade"), default=None,
                        help="what picks O-Net's epoch to keep: the NME of the validation crops, their scatter NME "
                             "(the NME left after the net's mean offset: blind to a shift of the point convention), "
                             "or the whole cascade's NME on the held-out images (its recall and false positives "
                             "then guard a run started from weights)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="jitter the training crops: small rotations and scales of the landmark faces with their "
                             "points, contrast, brightness, grey, blur and JPEG on every crop (training/augment.py; "
                             "default: off)")
    parser.add_argument("--keep-initial", action=argparse.BooleanOptionalAction, default=None,
                        help="keep a stage's initial weights unless an epoch beats them on validation without "
                             "losing recall or adding false positives (default: on when starting from weights, "
                             "off from scratch; --no-keep-initial to continue a cascade of your own)")
    parser.add_argument("--detection-slack", type=float, default=0.5, metavar="POINTS",
                        help="with --keep-initial: how many percentage points of recall an epoch may lose (and of "
                             "false-positive rate, or hundredths of false positives per image with --select "
                             "cascade, gain) against the initial weights and still be kept (default 0.5)")
    parser.add_argument("--train-layers", type=_stages, default=None, metavar="LAYER,...",
                        help="train only these layers of every trained stage (Caffe names, e.g. conv6-1 for O-Net's "
                             "face/non-face head), the rest frozen, or 'all' (default: O-Net's landmark head conv6-3 "
                             "in a fine-tune, every layer from scratch)")
    parser.add_argument("--dropout", type=float, default=None, metavar="RATIO",
                        help="O-Net's drop5 dropout ratio while training, in [0, 1) (default 0 in a fine-tune: the "
                             "landmark head is refitted on the features the detector sees; the net's 0.25 from "
                             "scratch; docs/training.md)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="mirror half the landmark faces of every batch, points swapped left/right "
                             "(training/augment.py; seeded; default: off)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out bad annotation lines (counted) instead of stopping at the first one")
    parser.add_argument("--batch-size", type=int, default=384, help="mini-batch size")
    parser.add_argument("--lr", type=float, default=None, help="initial learning rate (default 0.0002 fine-tune, 0.003 scratch)")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default=None,
                        help="optimiser (SGD: momentum 0.9; default sgd fine-tune, adam scratch)")
    parser.add_argument("--schedule", choices=("step", "cosine", "constant"), default="step",
                        help="lr schedule (step: x0.1 at 50%% and 75%%)")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="L2 weight decay on kernels")
    parser.add_argument("--ohem", type=_ohem, default=0.7, help="online hard sample mining keep ratio, or 'off'")
    parser.add_argument("--classification-only", action="store_true",
                        help="train the face/non-face task only (alphas 1, 0, 0), as in the paper's OHEM experiment")
    parser.add_argument("--alphas", type=_alphas, default=None, metavar="DET,BOX,LANDMARK",
                        help="task weights for every stage (default: 0,0,1 fine-tune; from scratch the paper's, "
                             "P/R-Net 1,0.5,0.5, O-Net 1,0.5,1); box 0 keeps the boxes' convention when "
                             "fine-tuning on data whose boxes are drawn differently")
    parser.add_argument("--per-image", type=float, default=None,
                        help="samples per image in units of the paper's 3:1:1:2 mix (landmark faces for O-Net "
                             "only; default 1 fine-tune, 2 scratch)")
    parser.add_argument("--max-samples", type=int, default=None,
                        help="train each stage on a seeded random subset of this many samples")
    parser.add_argument("--max-images", type=int, default=None,
                        help="train on only the first N annotated images that are not held out")
    parser.add_argument("--backgrounds", type=int, default=200, help="synthetic face-free images for extra negatives")
    parser.add_argument("--composites", type=int, default=0,
                        help="seeded multi-face composites of the training images (tiles and pasted faces at "
                             "several scales) added to P-Net's and R-Net's training images (default 0)")
    parser.add_argument("--mining-min-face", type=float, default=None,
                        help="min_face_size of the cascade that mines R-Net/O-Net samples (default: per image, "
                             "20/40/80, the largest <= 0.6 x its smallest face)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling, initialisation and shuffling")
    parser.add_argument("--device", default="cpu", help="torch device for training (e.g. cuda; mining runs on CPU)")
    parser.add_argument("--threads", type=int, default=1, help="torch, OpenCV and Numba threads")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes that cut and mine the samples (one OpenCV thread each)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=train_command)


def _records(args) -> list:
    from .readers import read_celeba, read_jsonl, read_wider

    skipped: List[str] = []
    records = [r for path in args.data for r in read_jsonl(path, skipped=skipped if args.skip_bad else None)]
    records += [r for gt, images in args.wider for r in read_wider(gt, images)]
    records += [r for bbox, points, images in args.celeba for r in read_celeba(bbox, points, images)]
    if skipped:
        print(f"skipped {len(skipped)} bad annotation lines (--skip-bad), the first: {skipped[0]}", file=sys.stderr)
    if not records:
        raise ValueError("no training data: pass --data A.jsonl (or --wider GT IMAGES / --celeba BBOX LANDMARKS IMAGES)")
    return records


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options left unset from FINE_TUNE (--init shipped or a folder) or SCRATCH (--init scratch)."""
    defaults = SCRATCH if args.init == "scratch" else FINE_TUNE
    for name, value in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    if isinstance(args.train_layers, list):  # from the command line: every trained stage ('all': no freezing)
        args.train_layers = {} if args.train_layers == ["all"] else {stage: args.train_layers for stage in STAGE_NAMES}
    return args


def _progress_factory(enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None

    def factory(stage: str, phase: str, total: int):
        bar = tqdm(total=total, desc=f"{stage} {phase}", unit="sample" if phase == "train" else "img",
                   file=sys.stderr, dynamic_ncols=True, leave=True, unit_scale=True)

        def update(n: int = 1, terms=None):
            bar.update(n)
            if terms:
                bar.set_postfix(loss=f"{terms['loss']:.4f}", refresh=False)
            if bar.n >= bar.total:
                bar.close()
        return update
    return factory


def train_command(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError:
        raise ValueError("fastmtcnn train needs torch: pip install \"fastmtcnn[train]\" (CPU: torch==2.13.0)") from None
    from ..runtime import set_num_threads
    from .loop import TrainConfig
    from .loss import CLASSIFICATION_ONLY, STAGE_ALPHAS
    from .samples import PAPER_RATIO, Quota
    from .stages import DEFAULT_QUOTAS, CascadeTraining, train_cascade

    if args.threads < 1 or args.workers < 1:
        raise ValueError("--threads and --workers must be >= 1")
    resolve_defaults(args)
    torch.set_num_threads(args.threads)
    set_num_threads(args.threads)
    configs = {stage: TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=args.lr,
                                  optimizer=args.optimizer, schedule=args.schedule, weight_decay=args.weight_decay,
                                  ohem=args.ohem, seed=args.seed, device=args.device, warmup_steps=args.warmup,
                                  patience=args.patience, mix=None if args.no_mix else PAPER_RATIO,
                                  keep_initial=args.keep_initial, keep_convention=args.keep_convention,
                                  augment=args.augment, select=args.select, flip=args.flip,
                                  train_layers=args.train_layers.get(stage), dropout=args.dropout,
                                  detection_slack=args.detection_slack / 100,
                                  alphas=CLASSIFICATION_ONLY if args.classification_only else args.alphas or alphas)
               for (stage, alphas), epochs in zip(STAGE_ALPHAS.items(), args.epochs)}
    quotas = {stage: Quota(*(int(round(n * args.per_image)) for n in (q.negative, q.positive, q.part, q.landmark)))
              for stage, q in DEFAULT_QUOTAS.items()}
    plan = CascadeTraining(stages=args.stages, init=args.init, configs=configs, quotas=quotas,
                           mining_min_face=args.mining_min_face, backgrounds=args.backgrounds,
                           composites=args.composites, max_samples=args.max_samples,
                           max_images=args.max_images, val_fraction=args.val_fraction, workers=args.workers,
                           seed=args.seed)
    started = time.perf_counter()
    summary = train_cascade(_records(args), args.out, plan, _progress_factory(not args.no_progress))
    print(f"{summary['images']} training images, {summary['validation_images']} held out for validation")
    for stage in plan.stages:
        print(stage_report(stage, summary["stages"][stage]))
    print(f"wall time {time.perf_counter() - started:.0f} s; weights: {args.out} "
          f"(use: fastmtcnn eval DATA.jsonl --weights {args.out})")
    return 0


def stage_report(stage: str, result: dict) -> str:
    """Lines for one stage: samples, time by phase, validation before -> after and what was kept."""
    from .validation import describe

    total = sum(result["samples"][name] for name in ("negative", "positive", "part", "landmark"))
    epochs = len(result["history"])
    if result["kept_initial"]:
        kept = f"kept the initial weights: no epoch improved validation in {epochs}"
    else:
        kept = f"kept epoch {result['best_epoch'] + 1} of {epochs}"
    kept += " (stopped early)" if result["stopped_early"] else ""
    return (f"{stage}: {total} samples, sampling {result['sampling_seconds']:.0f} s, training "
            f"{result['training_seconds']:.0f} s, validation {result['validation_seconds']:.0f} s; {kept}\n"
            f"  validation before: {describe(result['before'])}\n"
            f"  validation after:  {describe(result['after'])}")
