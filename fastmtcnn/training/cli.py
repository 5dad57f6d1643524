"""`fastmtcnn train`: the paper's three-stage training into a weights folder (needs `pip install "fastmtcnn[train]"`).

    fastmtcnn train --data A.jsonl [--data B.jsonl ...] --out DIR [--stages pnet,rnet,onet]
                    [--init shipped|scratch|DIR] [--epochs 10] [--ohem 0.7] ...

Then `fastmtcnn eval DATA.jsonl --weights DIR` or `Detector(weights=DIR)`. Torch is imported only when the
command runs, so `fastmtcnn --help` works without it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List

from ..commands import add_command

OHEM_OFF = ("off", "none", "0", "1")


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
    parser.add_argument("--stages", type=_stages, default="pnet,rnet,onet", help="stages to train, in cascade order")
    parser.add_argument("--init", default="shipped", help="initial weights: shipped, scratch or a weights folder")
    parser.add_argument("--epochs", type=_epochs, default="10", help="epochs: N for every stage, or P,R,O per stage")
    parser.add_argument("--batch-size", type=int, default=384, help="mini-batch size")
    parser.add_argument("--lr", type=float, default=0.01, help="initial learning rate")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="optimiser (SGD: momentum 0.9)")
    parser.add_argument("--schedule", choices=("step", "cosine", "constant"), default="step",
                        help="lr schedule (step: x0.1 at 50%% and 75%%)")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="L2 weight decay on kernels")
    parser.add_argument("--ohem", type=_ohem, default=0.7, help="online hard sample mining keep ratio, or 'off'")
    parser.add_argument("--classification-only", action="store_true",
                        help="train the face/non-face task only (alphas 1, 0, 0), as in the paper's OHEM experiment")
    parser.add_argument("--alphas", type=_alphas, default=None, metavar="DET,BOX,LANDMARK",
                        help="task weights for every stage instead of the paper's (P/R-Net 1,0.5,0.5; O-Net 1,0.5,1); "
                             "box 0 keeps the boxes' convention when fine-tuning on data whose boxes are drawn "
                             "differently")
    parser.add_argument("--per-image", type=float, default=1.0,
                        help="samples per image in units of the paper's 3:1:1:2 mix (landmark faces for O-Net only)")
    parser.add_argument("--max-samples", type=int, default=None,
                        help="train each stage on a seeded random subset of this many samples")
    parser.add_argument("--max-images", type=int, default=None, help="use only the first N annotated images")
    parser.add_argument("--backgrounds", type=int, default=200, help="synthetic face-free images for extra negatives")
    parser.add_argument("--mining-min-face", type=float, default=None,
                        help="min_face_size of the cascade that mines R-Net/O-Net samples (default: per image, "
                             "20/40/80, the largest <= 0.6 x its smallest face)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling, initialisation and shuffling")
    parser.add_argument("--device", default="cpu", help="torch device for training (e.g. cuda; mining runs on CPU)")
    parser.add_argument("--threads", type=int, default=1, help="torch, OpenCV and Numba threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=train_command)


def _records(args) -> list:
    from .readers import read_celeba, read_jsonl, read_wider

    records = [r for path in args.data for r in read_jsonl(path)]
    records += [r for gt, images in args.wider for r in read_wider(gt, images)]
    records += [r for bbox, points, images in args.celeba for r in read_celeba(bbox, points, images)]
    if not records:
        raise ValueError("no training data: pass --data A.jsonl (or --wider GT IMAGES / --celeba BBOX LANDMARKS IMAGES)")
    return records[:args.max_images] if args.max_images else records


def _progress_factory(enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None

    def factory(stage: str, phase: str, total: int):
        bar = tqdm(total=total, desc=f"{stage} {phase}", unit="batch" if phase == "train" else "img",
                   file=sys.stderr, dynamic_ncols=True, leave=True)

        def update(n: int = 1, terms=None):
            bar.update(n)
            if terms:
                bar.set_postfix(loss=f"{terms['loss']:.4f}", acc=f"{terms['accuracy']:.3f}", refresh=False)
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
    from .samples import KIND_NAMES, Quota
    from .stages import DEFAULT_QUOTAS, CascadeTraining, train_cascade

    if args.threads < 1:
        raise ValueError("--threads must be >= 1")
    torch.set_num_threads(args.threads)
    set_num_threads(args.threads)
    configs = {stage: TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=args.lr,
                                  optimizer=args.optimizer, schedule=args.schedule, weight_decay=args.weight_decay,
                                  ohem=args.ohem, seed=args.seed, device=args.device,
                                  alphas=CLASSIFICATION_ONLY if args.classification_only else args.alphas or alphas)
               for (stage, alphas), epochs in zip(STAGE_ALPHAS.items(), args.epochs)}
    quotas = {stage: Quota(*(int(round(n * args.per_image)) for n in (q.negative, q.positive, q.part, q.landmark)))
              for stage, q in DEFAULT_QUOTAS.items()}
    plan = CascadeTraining(stages=args.stages, init=args.init, configs=configs, quotas=quotas,
                           mining_min_face=args.mining_min_face, backgrounds=args.backgrounds, max_samples=args.max_samples,
                           seed=args.seed)
    summary = train_cascade(_records(args), args.out, plan, _progress_factory(not args.no_progress))
    for stage, result in summary["stages"].items():
        last = result["history"][-1] if result["history"] else {}
        total = sum(result["samples"][name] for name in KIND_NAMES)
        print(f"{stage}: {total} samples {json.dumps(result['samples'])}, "
              f"sampling {result['sampling_seconds']:.0f} s, training {result['training_seconds']:.0f} s, "
              f"last epoch train loss {last.get('train_loss', float('nan')):.4f}, "
              f"val accuracy {last.get('val_accuracy', float('nan')):.4f}")
    print(f"weights: {args.out} (use: fastmtcnn eval DATA.jsonl --weights {args.out})")
    return 0
