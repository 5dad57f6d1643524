"""Load test of `fastmtcnn serve` on 127.0.0.1: N client threads for a bounded time, every answer checked.

    python -m bench.load.http_load --duration 60 --clients 16 --workers 2            # starts its own server
    python -m bench.load.http_load --url http://127.0.0.1:8080 --duration 60         # an already running one
    python -m bench.load.http_load threading --calls 60                              # thread-local vs locked cascade

Prints one JSON report: requests, req/s, p50/p90/p99 latency, statuses, client errors, answers that differ
from the serial in-process result for the same image, peak RSS (VmHWM) of the server process. Below the
queue limit (clients <= workers + queue size) every answer must be 200; above it only 200 and 503.
Exit code 1 if an answer was wrong, or an error/unexpected status was seen.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[2]
GROUP = REPO / "tests" / "fixtures" / "group_640x480.jpg"
ASTRONAUT = REPO / "examples" / "astronaut.jpg"


def vga_bodies() -> Dict[str, bytes]:
    """VGA (640x480) JPEGs: the group fixture, its mirror and gray copy, and the astronaut letterboxed to VGA."""
    group = cv2.imread(str(GROUP))
    canvas = np.zeros((480, 640, 3), np.uint8)
    canvas[:, 80:560] = cv2.resize(cv2.imread(str(ASTRONAUT)), (480, 480), interpolation=cv2.INTER_AREA)
    images = {"group": group, "group_flip": np.ascontiguousarray(group[:, ::-1]),
              "group_gray": cv2.cvtColor(cv2.cvtColor(group, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR),
              "astronaut_vga": canvas}
    return {name: cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()
            for name, image in images.items()}


def mixed_bodies(count: int = 12, seed: int = 0) -> Dict[str, bytes]:
    """JPEG/PNG/WebP bodies of the shipped photos at sizes from 120 to 1280 px wide."""
    rng = random.Random(seed)
    sources = [cv2.imread(str(GROUP)), cv2.imread(str(ASTRONAUT))]
    bodies = {}
    for i in range(count):
        source = sources[i % 2]
        width = rng.choice([120, 200, 320, 480, 640, 800, 1024, 1280])
        height = max(16, round(source.shape[0] * width / source.shape[1]))
        image = cv2.resize(source, (width, height), interpolation=cv2.INTER_AREA if width < source.shape[1]
                           else cv2.INTER_LINEAR)
        ext = [".jpg", ".png", ".webp"][i % 3]
        params = [cv2.IMWRITE_WEBP_QUALITY, 90] if ext == ".webp" else []
        bodies[f"{i}_{width}x{height}{ext}"] = cv2.imencode(ext, image, params)[1].tobytes()
    return bodies


def expected_faces(bodies: Dict[str, bytes], min_face_size: float = 20) -> Dict[str, list]:
    """The in-process serial result of each body, as the server's JSON gives it."""
    from fastmtcnn import Detector

    detector = Detector(min_face_size=min_face_size)
    return {name: json.loads(detector.detect(body).to_json()) for name, body in bodies.items()}


def content_type(name: str) -> str:
    return {"png": "image/png", "webp": "image/webp"}.get(name.rsplit(".", 1)[-1], "image/jpeg")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status(pid: int, field: str) -> float:
    """A memory field of /proc/<pid>/status (VmRSS, VmHWM) in MB."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Server:
    """`python -m fastmtcnn serve` on 127.0.0.1 in a subprocess (log to a temp file)."""

    def __init__(self, port: int, *args: str):
        self.port, self.args = port, args
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(prefix="fastmtcnn-serve-", suffix=".log", delete=False)
        self.process: Optional[subprocess.Popen] = None

    def start(self, ready_timeout: float = 120) -> "Server":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fastmtcnn", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", *self.args], stdout=self.log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        end = time.monotonic() + ready_timeout
        with httpx.Client(timeout=2) as http:
            while time.monotonic() < end:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode}, log: {self.log.name}")
                try:
                    if http.get(self.url + "/readyz").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server not ready in time")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def run_load(url: str, bodies: Dict[str, bytes], expected: Dict[str, list], clients: int, duration: float,
             max_requests: int, timeout: float = 30.0, on_request=None) -> Dict[str, object]:
    """`clients` threads post random bodies until `duration` s or `max_requests` requests; every 200 is checked."""
    stop_at = time.monotonic() + duration
    lock = threading.Lock()
    statuses: Dict[int, int] = {}
    latencies: List[float] = []
    mismatches: List[str] = []
    errors: Dict[str, int] = {}
    sent = [0]
    names = sorted(bodies)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as http:
            while time.monotonic() < stop_at:
                with lock:
                    if sent[0] >= max_requests:
                        return
                    sent[0] += 1
                    count = sent[0]
                name = rng.choice(names)
                started = time.perf_counter()
                try:
                    response = http.post(url + "/v1/detect", content=bodies[name],
                                         headers={"content-type": content_type(name)})
                    status, ok = response.status_code, response.status_code == 200
                    same = ok and response.json()["faces"] == expected[name]
                except httpx.HTTPError as error:
                    with lock:
                        errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                    time.sleep(0.05)
                    continue
                elapsed = time.perf_counter() - started
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                    if ok:
                        latencies.append(elapsed)
                        if not same:
                            mismatches.append(name)
                if on_request is not None:
                    on_request(count)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(seed,), daemon=True) for seed in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, stop_at + timeout + 10 - time.monotonic()))
    wall = time.monotonic() - started
    hung = sum(thread.is_alive() for thread in threads)
    latencies.sort()

    def pct(q: float) -> Optional[float]:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1) if latencies else None

    return {"clients": clients, "seconds": round(wall, 2), "requests": sum(statuses.values()),
            "ok": statuses.get(200, 0), "req_per_s": round(statuses.get(200, 0) / wall, 2),
            "latency_ms": {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0)},
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "client_errors": errors,
            "mismatches": len(mismatches), "hung_clients": hung}


def load_command(args: argparse.Namespace) -> int:
    bodies = vga_bodies() if args.images == "vga" else mixed_bodies()
    expected = expected_faces(bodies)
    queue_size = args.queue_size if args.queue_size is not None else args.clients
    server = None
    url = args.url
    if url is None:
        extra = ["--workers", str(args.workers), "--queue-size", str(queue_size)]
        if args.threads is not None:
            extra += ["--threads", str(args.threads)]
        server = Server(free_port(), *extra).start()
        url = server.url
    try:
        report = run_load(url, bodies, expected, args.clients, args.duration, args.max_requests)
        report.update({"images": args.images, "workers": args.workers, "queue_size": queue_size,
                       "opencv_threads": args.threads, "cpus": os.cpu_count()})
        if server is not None:
            report["server_peak_rss_mb"] = round(proc_status(server.pid, "VmHWM"), 1)
            report["server_rss_mb"] = round(proc_status(server.pid, "VmRSS"), 1)
            report["server_log"] = server.log.name
    finally:
        if server is not None:
            server.stop()
    below_limit = args.clients <= args.workers + queue_size
    allowed = {"200"} if below_limit else {"200", "503"}
    report["pass"] = (not report["mismatches"] and not report["client_errors"] and not report["hung_clients"]
                      and set(report["statuses"]) <= allowed)
    print(json.dumps(report, indent=2))
    return 0 if report["pass"] else 1


# ---------------------------------------------------------------------------------------------- threading
def threading_command(args: argparse.Namespace) -> int:
    """Throughput of one shared Detector (thread-local cascades) vs one Cascade shared under a lock."""
    from fastmtcnn import Detector
    from fastmtcnn import Faces, set_num_threads
    from fastmtcnn.image_input import load_image
    from fastmtcnn.nets import channel_map
    from fastmtcnn.pipeline import Cascade

    if args.threads is not None:
        set_num_threads(args.threads)
    image = cv2.imread(str(GROUP))
    detector = Detector()
    cascade, lock = Cascade(detector.settings), threading.Lock()

    def locked_detect(pixels: np.ndarray) -> Faces:
        loaded, order = load_image(pixels)
        with lock:
            return Faces.from_cascade(cascade.run(loaded, channel_map(order, loaded.shape[2])))

    want = detector.detect(image)
    assert np.array_equal(locked_detect(image).boxes, want.boxes)
    report = {"image": "640x480", "calls_per_thread": args.calls, "opencv_threads": args.threads,
              "cpus": os.cpu_count(), "results": []}
    for workers in args.workers_list:
        for name, fn in (("thread_local", detector.detect), ("shared_lock", locked_detect)):
            for _ in range(2):  # warm every thread's cascade
                threads = [threading.Thread(target=fn, args=(image,)) for _ in range(workers)]
                [t.start() for t in threads], [t.join() for t in threads]
            barrier = threading.Barrier(workers + 1)

            def work() -> None:
                barrier.wait()
                for _ in range(args.calls):
                    fn(image)

            threads = [threading.Thread(target=work) for _ in range(workers)]
            for thread in threads:
                thread.start()
            barrier.wait()
            started = time.perf_counter()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - started
            report["results"].append({"mode": name, "threads": workers,
                                      "images_per_s": round(workers * args.calls / seconds, 2)})
    print(json.dumps(report, indent=2))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["threading"]:
        parser = argparse.ArgumentParser(prog="http_load.py threading")
        parser.add_argument("--calls", type=int, default=40, help="detections per thread")
        parser.add_argument("--workers-list", type=int, nargs="+", default=[1, 2, 4])
        parser.add_argument("--threads", type=int, default=None, help="OpenCV/Numba threads (process-wide)")
        return threading_command(parser.parse_args(argv[1:]))
    parser = argparse.ArgumentParser(prog="http_load.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="test a running server instead of starting one (127.0.0.1 only)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server detection threads")
    parser.add_argument("--queue-size", type=int, default=None, help="server queue (default: = clients)")
    parser.add_argument("--threads", type=int, default=None, help="server OpenCV/Numba threads")
    parser.add_argument("--images", choices=["vga", "mixed"], default="vga")
    args = parser.parse_args(argv)
    if args.url is not None and not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        parser.error("--url must be on 127.0.0.1")
    return load_command(args)


if __name__ == "__main__":
    sys.exit(main())
