"""`fastmtcnn batch INPUT_DIR --out results.jsonl`: detect faces in every image of a folder tree, resumably.

    fastmtcnn batch photos/ --out faces.jsonl [--crops crops/] [--workers N] [--min-face-size N] [--fsync]

Output: one JSON line per image, in sorted order of the image paths relative to INPUT_DIR (POSIX '/'):

    {"path": "a/b.jpg", "width": 640, "height": 480, "faces": [{"box": [...], "score": s, "landmarks": [...]}]}
    {"path": "bad.jpg", "error": "... is not an image OpenCV can decode ..."}

- Images: the formats `detect` reads (`fastmtcnn.image_input.IMAGE_EXTENSIONS`: JPEG, PNG, WebP, BMP, TIFF, GIF,
  PNM; any case), found recursively (symlinked folders are
  not followed; the --crops folder is skipped when it is inside INPUT_DIR).
- Resume: records already in the output are skipped, so re-running after Ctrl-C or a crash finishes the job,
  and the final file is byte-identical to an uninterrupted run. A partly written last line is cut off first.
  Errors are results too: a re-run does not retry them (delete those lines to retry).
- Each record is appended and flushed as soon as it is known (`--fsync` also forces it to disk), so an
  interruption loses at most the images in flight.
- Unreadable, truncated or corrupt images give an "error" record and the run goes on. An image the decoder
  decodes while complaining about damaged data (libjpeg's "Corrupt JPEG data: ...") gets a "warning".
- `--crops DIR`: ArcFace 112 x 112 aligned crops (`fastmtcnn.alignment.align`) as DIR/<folder>/<stem>_<k>.png,
  k = face index in the record (0 = highest score); the image's folder under INPUT_DIR is kept. When two
  images of one folder share a stem (a.jpg, a.png), their crops use the full name (a.jpg_0.png). The record
  then lists its crops ("crops": [...], relative to DIR). Crops are written before their record.
- `--workers N` (N > 1): N processes ('spawn' context), each with one Detector on one thread; `--workers auto`:
  one per usable core (the throughput mode: one image in flight per core). Results are
  still written in sorted path order, so the output does not depend on N. A worker that dies (a crash in
  native code, the OOM killer) is replaced; the image that killed it gets an error record.
  `--workers 1` (default) detects in this process with OpenCV's default threads.
- Progress on stderr: tqdm if installed (`pip install fastmtcnn[batch]`), else a plain line, with images/s and
  faces found; `--quiet` turns it off. Exit code (docs/cli.md) 0 when every image of this run got faces, 1 when
  some got an error record (the others are done), 2 for a bad option; an empty folder is a warning.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import signal
import sys
import time
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Set, Tuple

from .commands import (EXIT_INPUT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Subcommands, add_command, add_detector_options,
                       engine_from_args)
from .engines import choose_engine
from .nets import check_weights
from .image_input import IMAGE_EXTENSIONS, find_images
from .runtime import usable_cores
from .settings import CascadeSettings

def crop_names(paths: Sequence[str]) -> Dict[str, str]:
    """Crop file prefix (relative POSIX, without `_<k>.png`) of each image path: its stem, or its full name
    when another image of the same folder has the same stem."""
    stems = Counter((str(Path(p).parent), Path(p).stem) for p in paths)
    names = {}
    for path in paths:
        p = Path(path)
        base = p.stem if stems[(str(p.parent), p.stem)] == 1 else p.name
        names[path] = (p.parent / base).as_posix()
    return names


def read_done(out: Path) -> Set[str]:
    """Paths already recorded in `out`; cuts a partly written last line off the file first."""
    if not out.exists():
        return set()
    with open(out, "rb+") as handle:
        data = handle.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):  # an interrupted write: drop the partial record, it is redone
            handle.truncate(end)
            data = data[:end]
    done = set()
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            done.add(json.loads(line)["path"])
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{out} line {number} is not a fastmtcnn batch record; fix or delete that line, "
                             "or write to a new --out file") from None
    return done


# --- the work on one image (in this process or in a worker) -------------------------------------------------

@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs (picklable, checked in the parent before any worker starts).

    root: INPUT_DIR; crops: folder for aligned crops or None; crop_size: their side in pixels;
    num_threads: OpenCV/Numba threads of the worker's process (None: the library default);
    backend, precision, weights: the engine and the weights folder (`Detector`'s keywords of the same names).
    """

    settings: CascadeSettings
    root: str
    crops: Optional[str] = None
    crop_size: int = 112
    num_threads: Optional[int] = None
    backend: str = "auto"
    precision: str = "f32"
    weights: Optional[str] = None


@dataclass
class _Worker:
    config: WorkerConfig
    detector: Any  # fastmtcnn.Detector, imported in the worker


_worker: Optional[_Worker] = None  # this process's detector, set by _init


def _init(config: WorkerConfig, in_worker: bool) -> None:
    from .detector import Detector

    global _worker
    if in_worker:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled once, by the parent
    _worker = _Worker(config, Detector(settings=config.settings, num_threads=config.num_threads,
                                       backend=config.backend, precision=config.precision,
                                       weights=config.weights))


def _process(task: Tuple[str, str]) -> Dict[str, Any]:
    import cv2

    from .alignment import align
    from .image_input import LoadedImage, decode_image
    from .native_log import NativeLog

    path, crop_name = task
    config, detector = _worker.config, _worker.detector
    try:
        try:
            data = (Path(config.root) / path).read_bytes()
        except OSError as error:
            return {"path": path, "error": f"cannot read {path}: {error.strerror or error}"}
        # messages name the relative path, so records do not depend on where INPUT_DIR is
        with NativeLog() as log:  # one decode at a time in this process: libjpeg's complaints are caught
            image = decode_image(data, config.settings.max_image_pixels, source=path)
        faces = detector.detect(LoadedImage(image, "bgr"))
        record: Dict[str, Any] = {"path": path, "width": int(image.shape[1]), "height": int(image.shape[0]),
                                  "faces": faces.to_list()}
        warning = log.damage_warning()
        if warning:
            record["warning"] = warning
        if config.crops is not None:
            names = []
            for k, points in enumerate(faces.landmarks):
                name = f"{crop_name}_{k}.png"
                target = Path(config.crops) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(target), align(image, points, config.crop_size)):
                    raise OSError(f"cannot write crop {target}")
                names.append(name)
            record["crops"] = names
        return record
    except (ValueError, TypeError) as error:  # ImageError and friends: the message says it all
        return {"path": path, "error": str(error)}
    except Exception as error:  # noqa: BLE001 - one bad image must not stop a long job
        return {"path": path, "error": f"{type(error).__name__}: {error}"}


def run_records(tasks: Sequence[Tuple[str, str]], workers: int, config: WorkerConfig,
                process: Callable[[Tuple[str, str]], Dict[str, Any]] = None) -> Iterator[Dict[str, Any]]:
    """Records of `tasks` in order; `workers` > 1 spreads them over processes (see `_records_in_processes`).
    `process` (default `_process`) turns one task into its record; in a pool it must be importable by name."""
    process = process or _process
    if workers <= 1:
        _init(config, in_worker=False)
        for task in tasks:
            yield process(task)
        return
    yield from _records_in_processes(tasks, workers, config, process)


def _records_in_processes(tasks: Sequence[Tuple[str, str]], workers: int, config: WorkerConfig,
                          process: Callable) -> Iterator[Dict[str, Any]]:
    """Ordered records from a pool of `workers` processes, at most 2 x workers images in flight.

    A worker that dies (a crash in native code, the OOM killer) breaks the pool without saying which image
    killed it: the images that were in flight are then run again one at a time in a new pool, and an image
    that kills a worker on its own gets an error record, so one poisonous file neither hangs nor stops the job.
    """
    queue = deque(range(len(tasks)))  # indexes not yet submitted (or to retry), lowest first
    suspects: Set[int] = set()  # in flight when a worker died: each now runs alone
    in_flight: Dict[int, Future] = {}
    finished: Dict[int, Dict[str, Any]] = {}
    next_out, fruitless_pools = 0, 0
    pool = _new_pool(workers, config)
    try:
        while next_out < len(tasks):
            try:
                _submit(pool, process, tasks, queue, in_flight, suspects, 2 * workers)
                oldest = min(in_flight)
                finished[oldest] = in_flight[oldest].result()
                del in_flight[oldest]
                fruitless_pools = 0
            except BrokenProcessPool:
                progress = _settle_broken_pool(tasks, queue, in_flight, suspects, finished)
                fruitless_pools = 0 if progress else fruitless_pools + 1
                if fruitless_pools >= _MAX_FRUITLESS_POOLS:
                    raise RuntimeError(f"fastmtcnn batch: {fruitless_pools} worker pools in a row died before "
                                       "finishing any image (a failing worker start-up, or out of memory?); "
                                       "try --workers 1 to see the error") from None
                pool.shutdown(wait=True)
                pool = _new_pool(workers, config)
            while next_out in finished:
                yield finished.pop(next_out)
                next_out += 1
    finally:  # normal end, Ctrl-C, or the consumer stopped: drop the images in flight
        _stop_pool(pool)


#: Consecutive broken pools without one finished image before a batch gives up (e.g. workers that cannot start).
_MAX_FRUITLESS_POOLS = 10


def _submit(pool: ProcessPoolExecutor, process: Callable, tasks: Sequence, queue: deque, in_flight: Dict[int, Future],
            suspects: Set[int], limit: int) -> None:
    """Fill the pool up to `limit` images in flight, in order; a suspect image only ever runs alone."""
    while queue and len(in_flight) < limit and not suspects.intersection(in_flight):
        if queue[0] in suspects and in_flight:
            return
        in_flight[queue[0]] = pool.submit(process, tasks[queue[0]])  # raises on a broken pool: keep the index
        queue.popleft()


def _settle_broken_pool(tasks: Sequence, queue: deque, in_flight: Dict[int, Future], suspects: Set[int],
                        finished: Dict[int, Dict[str, Any]]) -> bool:
    """After a worker died: keep the records that made it, queue the lost images again as suspects (lowest
    first), or give the error record to a suspect that died alone. Empties `in_flight`; returns whether any
    image finished in the broken pool."""
    lost = sorted(index for index, future in in_flight.items() if _broken(future))
    finished.update((index, in_flight[index].result()) for index in in_flight if index not in lost)
    progress = len(lost) < len(in_flight)
    if len(lost) == 1 and lost[0] in suspects:
        finished[lost[0]] = {"path": tasks[lost[0]][0], "error": "the worker process died while processing "
                             "this image (a crash in native code or the OOM killer); the other images were not "
                             "affected"}
    else:
        suspects.update(lost)
        queue.extendleft(reversed(lost))
    in_flight.clear()
    return progress


def _broken(future: Future) -> bool:
    return not future.done() or future.exception() is not None


def _new_pool(workers: int, config: WorkerConfig) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init,
                               initargs=(config, True))


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop at once: cancel queued work and terminate the workers (no public terminate before Python 3.14)."""
    for worker in list((getattr(pool, "_processes", None) or {}).values()):
        worker.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


# --- progress --------------------------------------------------------------------------------------------------

class _Progress:
    def __init__(self, total: int, initial: int, enabled: bool):
        self.total, self.initial, self.done, self.faces, self.errors = total, initial, initial, 0, 0
        self.start = time.monotonic()
        self.last = 0.0
        self.bar = None
        self.enabled = enabled
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=total, initial=initial, unit="img", dynamic_ncols=True, file=sys.stderr,
                        desc="fastmtcnn batch")

    def update(self, record: Dict[str, Any]) -> None:
        self.done += 1
        self.faces += len(record.get("faces", ()))
        self.errors += "error" in record
        if self.bar is not None:
            self.bar.set_postfix(faces=self.faces, errors=self.errors, refresh=False)
            self.bar.update(1)
        elif self.enabled and time.monotonic() - self.last >= 1.0:
            self.last = time.monotonic()
            self._line("\r")

    def _line(self, end: str) -> None:
        elapsed = time.monotonic() - self.start
        new = self.done - self.initial
        rate = new / elapsed if elapsed > 0 else 0.0
        print(f"{end}fastmtcnn batch: {self.done}/{self.total} images, {rate:.1f} images/s, {self.faces} faces, "
              f"{self.errors} errors", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            self._line("\r")
            print(file=sys.stderr)


# --- the command -----------------------------------------------------------------------------------------------

def run_batch(input_dir: Path, out: Path, crops: Optional[Path] = None, workers: int = 1,
              min_face_size: float = 20, fsync: bool = False, progress: bool = True, crop_size: int = 112,
              num_threads: Optional[int] = None, backend: str = "auto", precision: str = "f32",
              weights: Optional[str] = None) -> Dict[str, Any]:
    """Detect faces in every image under `input_dir`, appending records to `out` (see the module doc).
    Returns a summary: images found, skipped (already done), processed, faces, errors, seconds.
    A missing INPUT_DIR is a FileNotFoundError, a file in its place a NotADirectoryError."""
    input_dir, out = Path(input_dir), Path(out)
    if not input_dir.exists():
        raise FileNotFoundError(f"{input_dir} does not exist: pass the folder that holds the images")
    if not input_dir.is_dir():
        raise NotADirectoryError(f"{input_dir} is a file, not a folder: pass the folder that holds the images "
                                 "(for single images use `fastmtcnn detect`)")
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    choose_engine(backend, precision)  # a bad or missing engine fails here, before any worker starts
    check_weights(None if weights is None else str(weights))  # and a bad weights folder
    config = WorkerConfig(CascadeSettings(min_face_size=min_face_size), str(input_dir),
                          str(crops) if crops else None, int(crop_size), 1 if workers > 1 else num_threads,
                          backend, precision, None if weights is None else str(weights))
    paths = find_images(input_dir, exclude=[crops] if crops else [])
    done = read_done(out)
    names = crop_names(paths)
    tasks = [(path, names[path]) for path in paths if path not in done]
    summary = {"images": len(paths), "skipped": len(paths) - len(tasks), "processed": 0, "faces": 0, "errors": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    progress_bar = _Progress(len(paths), len(paths) - len(tasks), progress)
    start = time.monotonic()
    try:
        with open(out, "a", encoding="utf-8") as handle:
            if tasks:
                with contextlib.closing(run_records(tasks, min(workers, len(tasks)), config)) as records:
                    for record in records:
                        handle.write(json.dumps(record) + "\n")
                        handle.flush()
                        if fsync:
                            os.fsync(handle.fileno())
                        summary["processed"] += 1
                        summary["faces"] += len(record.get("faces", ()))
                        summary["errors"] += "error" in record
                        progress_bar.update(record)
    finally:
        progress_bar.close()
    summary["seconds"] = round(time.monotonic() - start, 3)
    return summary


def _workers(text: str) -> int:
    """--workers: a positive count, or "auto" = one per usable core."""
    if text == "auto":
        return usable_cores()
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of processes or 'auto', got {text!r}") from None


def batch_command(args: argparse.Namespace) -> int:
    try:
        summary = run_batch(args.input_dir, args.out, crops=args.crops, workers=args.workers,
                            min_face_size=args.min_face_size, fsync=args.fsync, progress=not args.quiet,
                            crop_size=args.crop_size, weights=args.weights, **engine_from_args(args))
    except KeyboardInterrupt:
        print(f"fastmtcnn batch: interrupted; records so far are in {args.out}, re-run the same command to "
              "resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if summary["images"] == 0:
        print(f"fastmtcnn batch: warning: no image files under {args.input_dir} (looked for "
              f"{', '.join(IMAGE_EXTENSIONS)}, any case)", file=sys.stderr)
    rate = summary["processed"] / summary["seconds"] if summary["seconds"] else 0.0
    if not args.quiet:
        print(f"fastmtcnn batch: {summary['images']} images ({summary['skipped']} already done), "
              f"{summary['processed']} processed in {summary['seconds']:.1f} s ({rate:.1f} images/s), "
              f"{summary['faces']} faces, {summary['errors']} errors -> {args.out}", file=sys.stderr)
    return EXIT_INPUT_FAILED if summary["errors"] else EXIT_OK


def add_batch_command(commands: Subcommands) -> argparse.ArgumentParser:
    """Register `fastmtcnn batch`."""
    batch = add_command(commands, "batch", "detect faces in a folder tree into a resumable JSONL file",
                        "Detect faces in every image under INPUT_DIR (the formats `detect` reads), one JSON line "
                        "per image in sorted path order. Re-running resumes: images already in --out are skipped.")
    batch.add_argument("input_dir", type=Path, metavar="INPUT_DIR", help="folder of images (searched recursively)")
    batch.add_argument("--out", type=Path, required=True, help="JSONL output, appended to (resume)")
    batch.add_argument("--crops", type=Path, help="also write ArcFace-aligned crops <stem>_<k>.png here")
    batch.add_argument("--crop-size", type=int, default=112, metavar="PX",
                       help="side of the aligned crops in pixels, >= 1")
    batch.add_argument("--workers", type=_workers, default=1, metavar="N",
                       help="processes, >= 1 (1: in this process; auto: one per usable core, each on 1 thread, "
                            "the throughput mode); output order does not depend on it")
    add_detector_options(batch, threads=False)
    batch.add_argument("--fsync", action="store_true", help="os.fsync after every record (slower, crash-safe)")
    batch.add_argument("--quiet", action="store_true", help="no progress bar or summary on stderr")
    batch.set_defaults(run=batch_command)
    return batch
