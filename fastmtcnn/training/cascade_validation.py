"""O-Net judged as the detector uses it: the whole cascade (the P-Net and R-Net of the run plus the O-Net
being trained, exported and loaded by `Detector` on OpenCV DNN as `fastmtcnn eval` does) on the held-out
validation images, scored by the evaluation's own matching and NME (`fastmtcnn.evaluation`).

Why: the validation crops are R-Net's boxes and random crops around each face, every crop counted once; in
the cascade O-Net's own box is calibrated, only the best-scored box of a face survives NMS and the points
are placed in that box. Over 25 O-Nets trained from scratch this NME ranked them closer to the Sun evaluation
half's than the crop NME did and its recall followed Sun's where the crops' did not (docs/training.md, "From
scratch"): it is that measurement, on images the run holds out of training.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Union

import numpy as np

from ..evaluation.metrics import detection_summary, landmark_summary
from ..evaluation.report import score_dataset
from .export import export_net
from .nets import STEMS, MTCNNNet
from .readers import FaceRecord

#: The smallest face the validation cascade looks for (pixels): the evaluation setting of docs/training.md.
VALIDATION_MIN_FACE = 40.0


def evaluation_record(record: FaceRecord) -> dict:
    """One training record as a ground-truth line of `fastmtcnn.evaluation` (pixel-edge boxes, 5 points or
    None, ignore flags)."""
    faces = []
    for box, points, ignore in zip(record.boxes, record.landmarks, record.ignore):
        landmarks = None if np.isnan(points).any() else np.asarray(points, float).tolist()
        faces.append({"box": np.asarray(box, float).tolist(), "landmarks": landmarks, "ignore": bool(ignore)})
    return {"image": record.image, "faces": faces}


class CascadeValidation:
    """Callable net -> {"cascade_nme", "cascade_recall", "cascade_fp_per_image"}: the cascade of the
    weights folder `work` with `net` as its O-Net on the held-out `records` that are on disk and hold a
    landmark face (synthetic backgrounds are left out)."""

    def __init__(self, records: Sequence[FaceRecord], work: Union[str, Path],
                 min_face_size: float = VALIDATION_MIN_FACE):
        self.records: List[FaceRecord] = [r for r in records
                                          if r.pixels is None and len(r.boxes) and not np.isnan(r.landmarks).all()]
        self.truth = [evaluation_record(r) for r in self.records]
        self.work, self.min_face_size = Path(work), min_face_size

    def __len__(self) -> int:
        return len(self.records)

    def __call__(self, net: MTCNNNet) -> Dict[str, float]:
        from ..detector import Detector

        if not self.records:
            return {}
        with tempfile.TemporaryDirectory(prefix="fastmtcnn-val-") as folder:
            for stage, stem in STEMS.items():
                if stage != net.stage:
                    for suffix in ("prototxt", "caffemodel"):
                        shutil.copy(self.work / f"{stem}.{suffix}", Path(folder) / f"{stem}.{suffix}")
            training = net.training
            export_net(net, folder)
            net.train(training)
            detector = Detector(min_face_size=self.min_face_size, backend="opencv", weights=folder)
            predictions = {r.image: detector.detect(r.load()) for r in self.records}
        images = score_dataset(self.truth, predictions, eye_rule=False)
        nme = landmark_summary(images)["nme_mean"]
        return {"cascade_nme": float("nan") if nme is None else nme,
                "cascade_recall": detection_summary(images)["recall"],
                "cascade_fp_per_image": sum(image.false_positives for image in images) / len(images)}
