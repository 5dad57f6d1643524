"""int8 with its accuracy beside it: NNCF post-training quantization of P-Net, R-Net and O-Net on OpenVINO, each
net alone and together, scored against f32 on the shared sets.

    pip install nncf   # not a dependency of the package: only this experiment needs it
    python -m bench.int8_quantize [--calibration 300] [--configs f32 P R O PRO bf16] [--sets ...]

Calibration uses ../shared/data/train_sun_net7876 only (the training images, never an evaluation set): the first
`--calibration` images (sorted names), run through the f32 cascade at min face 20 to collect what each net sees
there: P-Net's pyramid level blobs, R-Net's crops of P-Net's candidates, O-Net's crops of R-Net's boxes.
Each config (a string of the nets that run int8, "f32" for none) is then scored with `fastmtcnn.evaluation` on the
shared sets at min face 20 and 40: recall and mean NME, against f32's of the same run. The bounds of issue 23:
recall within 0.5 points and mean NME within 0.3 points of f32 (either way) on every set and size. Speed: the median of
`--rounds` forwards of each net on the stage inputs of the VGA bench photo, f32 and int8 interleaved, 1 thread.
End to end: `detect` on the portraits (5 of each landmark set, 640x480, min face 20) for every config, interleaved,
CPU time, each config's fastest of `--rounds` rounds per image, median over the images (configs with int8 P-Net run
every level alone: the quantized P-Net has no pool mask input for the packed canvas).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Dict, List  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from fastmtcnn import Detector, engines, evaluation  # noqa: E402
from fastmtcnn.nets import ONET, PNET, RNET, onnx_model  # noqa: E402

from .machine import PORTRAIT_SIZE, SHARED_DATA, image_source, portrait_paths  # noqa: E402
from .net_inputs import crops, stage_inputs  # noqa: E402
from .rounds import interleaved, rotated  # noqa: E402

NETS = {"P": PNET, "R": RNET, "O": ONET}
SETS = ("landmarks_sun_cvpr13", "landmarks_300w_helen_train_subset", "detection_dlib_faces", "bench")
RECALL_BOUND, NME_BOUND = 0.005, 0.003
#: R-Net / O-Net calibration crops per training image (the stage's first boxes).
CALIBRATION_CROPS = 64


def calibration_inputs(count: int) -> Dict[str, List[np.ndarray]]:
    """What each net sees on the first `count` training images at min face 20 (f32 cascade)."""
    cascade = Detector(backend="openvino", num_threads=1, cache_dir=False, shape_buckets=False)._cascade()
    lines = (SHARED_DATA / "train_sun_net7876.jsonl").read_text().splitlines()
    paths = sorted(str(SHARED_DATA / json.loads(line)["image"]) for line in lines)[:count]
    inputs: Dict[str, List[np.ndarray]] = {"P": [], "R": [], "O": []}
    for path in paths:
        image = cv2.imread(path)
        blobs, candidates, refined = stage_inputs(image, cascade)
        inputs["P"] += blobs
        inputs["R"].append(crops(image, candidates[:CALIBRATION_CROPS], 24))
        inputs["O"].append(crops(image, refined[:CALIBRATION_CROPS], 48))
    return {key: [blob for blob in blobs if len(blob)] for key, blobs in inputs.items()}


def quantize(inputs: Dict[str, List[np.ndarray]], preset: str) -> Dict[str, object]:
    """{net key: quantized ov.Model} (NNCF, OpenVINO backend)."""
    import nncf

    core = engines._core()
    models = {}
    for key, spec in NETS.items():
        model = core.read_model(onnx_model(spec))
        data = nncf.Dataset(inputs[key])
        models[key] = nncf.quantize(model, data, subset_size=len(inputs[key]),
                                    preset=getattr(nncf.QuantizationPreset, preset))
    return models


class Int8Network(engines.OpenVINONetwork):
    """A stage on a quantized model compiled here (not pooled): the same contract as OpenVINONetwork."""

    def __init__(self, spec, model):  # noqa: D107 - the parent's __init__ takes a pooled model
        self.spec = spec
        compiled = engines._core().compile_model(model, "CPU", engines.compile_config("f32", 1))
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._outputs = tuple(compiled.output(name) for name in spec.outputs)
        self._tensor = engines._openvino().Tensor


@dataclasses.dataclass(frozen=True)
class MixedEngine(engines.Engine):
    """OpenVINO f32, except the nets in `int8` (key -> quantized model), which run their quantized model."""

    int8: tuple = ()

    def network(self, spec):
        for key, model in self.int8:
            if NETS[key] == spec:  # P-Net's masked twin (packed levels, `Engine.pack_area`) stays f32
                return Int8Network(spec, model)
        return super().network(spec)


def detector(config: str, models: Dict[str, object], min_face: int) -> Detector:
    """Config "f32", "bf16" (OpenVINO's bf16 hint, for its row beside int8's), or the int8 nets' keys ("PRO")."""
    found = Detector(min_face_size=min_face, backend="openvino", num_threads=1, cache_dir=False, shape_buckets=False,
                     precision="bf16" if config == "bf16" else "f32")
    if config not in ("f32", "bf16"):
        fields = {f.name: getattr(found.engine, f.name) for f in dataclasses.fields(found.engine)}
        if "P" in config:
            fields["pack_area"] = 0  # the quantized P-Net has no pool mask input: every level alone
        found.engine = MixedEngine(**fields, int8=tuple((key, models[key]) for key in config))
        found._local = type(found._local)()
    return found


def accuracy(config: str, models, sets) -> Dict[str, Dict[str, float]]:
    scores = {}
    for name in sets:
        listing = str(SHARED_DATA / f"{name}.jsonl")
        records = evaluation.load_dataset(listing)
        for min_face in (20, 40):
            found = detector(config, models, min_face)
            predictions, _ = evaluation.predict_dataset(records, str(SHARED_DATA), found.detect)
            report = evaluation.evaluate(listing, root=str(SHARED_DATA), predictions=predictions)
            scores[f"{name}@{min_face}"] = {"recall": report["detection"]["recall"],
                                            "nme": report["landmarks"]["nme_mean"]}
    return scores


def speed(models, rounds: int) -> Dict[str, float]:
    """Median ms of each net's forwards on the VGA bench photo's stage inputs, f32 vs int8 (and the ratio)."""
    image = cv2.imread(str(image_source("vga").path))
    cascade = Detector(backend="openvino", num_threads=1, cache_dir=False, shape_buckets=False)._cascade()
    levels, candidates, refined = stage_inputs(image, cascade)
    blobs = {"P": levels, "R": [crops(image, candidates[:256], 24)], "O": [crops(image, refined[:256], 48)]}
    result = {}
    for key, spec in NETS.items():
        nets = {"f32": engines.OpenVINONetwork(spec, "f32", 1), "int8": Int8Network(spec, models[key])}
        times = {name: [] for name in nets}
        for number, name in interleaved(["int8", "f32"], rounds + 1):  # round 0 (int8 first) is a warm-up
            start = time.perf_counter()
            for blob in blobs[key]:
                nets[name].forward(blob)
            if number:
                times[name].append((time.perf_counter() - start) * 1000)
        f32, int8 = statistics.median(times["f32"]), statistics.median(times["int8"])
        result[key] = {"f32_ms": f32, "int8_ms": int8, "speedup": f32 / int8}
    return result


def end_to_end(models, configs, rounds: int, portraits: int = 5) -> Dict[str, float]:
    """{config: median over portraits (VGA, min face 20) of the fastest CPU ms of `detect`}, configs interleaved."""
    images = [cv2.resize(cv2.imread(str(path)), PORTRAIT_SIZE, interpolation=cv2.INTER_AREA)
              for path in portrait_paths(portraits)]
    detectors = {config: detector(config, models, 20) for config in configs}
    best = {config: [float("inf")] * len(images) for config in configs}
    for number in range(rounds):
        for index, image in enumerate(images):
            for config in rotated(configs, number):
                start = time.process_time()
                detectors[config].detect(image)
                best[config][index] = min(best[config][index], (time.process_time() - start) * 1e3)
    return {config: statistics.median(times) for config, times in best.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calibration", type=int, default=300)
    parser.add_argument("--preset", default="MIXED", choices=("MIXED", "PERFORMANCE"))
    parser.add_argument("--configs", nargs="+", default=["f32", "P", "R", "O", "PRO"])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--save", help="folder to write the quantized models (OpenVINO IR) to")
    parser.add_argument("--load", help="use the quantized models saved by an earlier --save instead")
    parser.add_argument("--no-speed", action="store_true", help="accuracy only")
    args = parser.parse_args(argv)
    if args.load:
        models = {key: engines._core().read_model(os.path.join(args.load, f"{spec.stem}.xml"))
                  for key, spec in NETS.items()}
    else:
        inputs = calibration_inputs(args.calibration)
        print("calibration items:", {key: len(blobs) for key, blobs in inputs.items()}, flush=True)
        models = quantize(inputs, args.preset)
    if args.save:
        for key, model in models.items():
            engines._openvino().save_model(model, os.path.join(args.save, f"{NETS[key].stem}.xml"),
                                           compress_to_fp16=False)
    if not args.no_speed:
        print("speed (1 thread, VGA bench photo stage inputs):", json.dumps(speed(models, args.rounds)), flush=True)
        detect_ms = end_to_end(models, list(dict.fromkeys(["f32"] + args.configs)), args.rounds)
        print("detect, portraits at 640x480, min face 20, 1 thread, CPU ms (median over images of the fastest round):",
              ", ".join(f"{config} {ms:.2f} ({detect_ms['f32'] / ms:.2f}x f32)" for config, ms in detect_ms.items()),
              flush=True)
    reference = None
    for config in args.configs:
        scores = accuracy(config, models, args.sets)
        reference = reference or scores
        worst_recall = max(abs(reference[k]["recall"] - v["recall"]) for k, v in scores.items())
        worst_nme = max(abs((v["nme"] or 0) - (reference[k]["nme"] or 0)) for k, v in scores.items())
        verdict = "meets" if worst_recall <= RECALL_BOUND and worst_nme <= NME_BOUND else "fails"
        print(f"{config:4s} {verdict} the bounds: largest recall change {100 * worst_recall:.2f} points, largest "
              f"mean NME change {100 * worst_nme:.2f} points; " + ", ".join(
                  f"{k} {100 * v['recall']:.2f}/{100 * (v['nme'] or 0):.2f}" for k, v in scores.items()), flush=True)


if __name__ == "__main__":
    main()
