"""Issue 16's abuse cases against a real `fastmtcnn serve` on 127.0.0.1: status, latency, /healthz, server RSS.

    python -m bench.load.abuse                          # starts `fastmtcnn serve --workers 2` (defaults otherwise)
    python -m bench.load.abuse --cases 1 3 --json out.json

Each case runs while a thread polls /healthz every 50 ms on fresh connections and another samples the server's
VmRSS every 50 ms. Prints one table row per case: HTTP statuses, the slowest answer, the slowest /healthz
answer during the case (and how many polls got no 200: expected only beyond the connection limit), peak RSS
during it and RSS 3 s after (and the warm baseline, after ordinary requests).
Every loop is bounded in count and time; sockets only go to 127.0.0.1.
"""
from __future__ import annotations

import argparse
import json
import socket
import threading
import time
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Optional

import cv2
import httpx

from .http_load import ASTRONAUT, GROUP, Server, free_port, proc_status

BIG = 12000


# ------------------------------------------------------------------------------------------------- crafted inputs
def photo(side: int) -> bytes:
    """The astronaut photo resized to side x side, as JPEG."""
    image = cv2.resize(cv2.imread(str(ASTRONAUT)), (side, side), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", image)[1].tobytes()


def black_png(width: int, height: int) -> bytes:
    """An all-black RGB PNG compressed row by row (a few hundred KB for 49 Mpx; never held decoded here)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")

    compressor = zlib.compressobj(9)
    row = bytes(1 + 3 * width)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_frame(width: int, height: int, before_frame: bytes = b"") -> bytes:
    """A baseline JPEG header for width x height with `before_frame` (APP segments, stray bytes) before the SOF."""
    frame = b"\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x03\x01\x11\x00" * 3
    return b"\xff\xd8" + before_frame + frame + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + bytes(4096)


def tiff_header(width: int, height: int) -> bytes:
    """A little-endian TIFF whose one IFD says width x height (SHORT/LONG fields as a real encoder writes)."""
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 8), (262, 3, 2), (277, 3, 3)]
    ifd = len(entries).to_bytes(2, "little") + b"".join(
        tag.to_bytes(2, "little") + kind.to_bytes(2, "little") + (1).to_bytes(4, "little") + value.to_bytes(4, "little")
        for tag, kind, value in entries) + bytes(4)
    return b"II*\x00" + (8).to_bytes(4, "little") + ifd + bytes(90_000)


def many_parts(total_bytes: int) -> bytes:
    part = b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n\r\n'
    return part * (total_bytes // len(part)) + b"--b--\r\n"


# ------------------------------------------------------------------------------------------------- measuring
class Watch:
    """While active: /healthz latencies (fresh connection each) and VmRSS samples of the server process."""

    def __init__(self, url: str, pid: int):
        self.url, self.pid = url, pid
        self.stop = threading.Event()
        self.healthz: List[float] = []
        self.rss: List[float] = []
        self.threads = [threading.Thread(target=self._poll_healthz, daemon=True),
                        threading.Thread(target=self._sample_rss, daemon=True)]

    def _poll_healthz(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                ok = httpx.get(self.url + "/healthz", timeout=10).status_code == 200
            except httpx.HTTPError:
                ok = False
            self.healthz.append(time.perf_counter() - started if ok else float("inf"))
            self.stop.wait(0.05)

    def _sample_rss(self) -> None:
        while not self.stop.is_set():
            self.rss.append(proc_status(self.pid, "VmRSS"))
            self.stop.wait(0.05)

    def __enter__(self) -> "Watch":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)


def timed_posts(url: str, requests: List[dict], timeout: float = 90) -> Dict[str, object]:
    """POST each request (kwargs for httpx.post) in turn: statuses, error codes and the slowest answer (s)."""
    statuses, codes, slowest = [], [], 0.0
    for kwargs in requests:
        started = time.perf_counter()
        try:
            response = httpx.post(url + "/v1/detect", timeout=timeout, **kwargs)
            statuses.append(response.status_code)
            codes.append(response.json().get("error", {}).get("code") if response.status_code != 200 else "ok")
        except httpx.HTTPError as error:
            statuses.append(type(error).__name__)
            codes.append(None)
        slowest = max(slowest, time.perf_counter() - started)
    return {"statuses": statuses, "codes": sorted(set(map(str, codes))), "slowest_s": round(slowest, 2)}


def raw(body: bytes, content_type: str = "application/octet-stream", **params: str) -> dict:
    return {"content": body, "headers": {"content-type": content_type}, "params": params}


def half_requests(port: int, count: int) -> List[socket.socket]:
    """`count` connections to 127.0.0.1:`port` that send half a request line and stop (slowloris); the caller
    closes them."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sockets.append(sock)
    return sockets


def slow_connections(url: str, port: int, count: int, hold: float) -> Dict[str, object]:
    """`count` connections sending half a request line; how many the server closed within `hold` s, and whether
    a fresh request then got an answer."""
    sockets = half_requests(port, count)
    statuses = []
    try:
        try:
            response = httpx.get(url + "/healthz", timeout=10)
            statuses.append(response.status_code)
            retry_after = response.headers.get("retry-after")
            json_body = response.headers.get("content-type", "").startswith("application/json")
        except httpx.HTTPError as error:
            statuses.append(type(error).__name__)
            retry_after, json_body = None, False
        closed = 0
        end = time.monotonic() + hold
        for sock in sockets:
            sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                closed += sock.recv(64) == b""
            except ConnectionResetError:
                closed += 1
            except socket.timeout:
                pass
    finally:
        for sock in sockets:
            sock.close()
    return {"statuses": statuses, "json": json_body, "retry_after": retry_after, "closed_by_server": closed,
            "of": count}


def cases(url: str, port: int) -> Dict[str, Callable[[], Dict[str, object]]]:
    """Issue 16's numbered cases (plus the variants it names), each a function returning its result dict."""
    large_photo = photo(1342)  # 1.8 Mpx
    return {
        "1 flood: 561x561 thresholds=0,0,0 min_face=4": lambda: timed_posts(url, [
            raw(photo(561), "image/jpeg", thresholds="0,0,0", min_face_size="4")]),
        "1 flood: 1.8 Mpx P-Net 0.02 min_face=4": lambda: timed_posts(url, [
            raw(large_photo, "image/jpeg", thresholds="0.02,0.7,0.7", min_face_size="4")]),
        "1 flood: 1.8 Mpx P-Net 0.02 min_face=12": lambda: timed_posts(url, [
            raw(large_photo, "image/jpeg", thresholds="0.02,0.7,0.7", min_face_size="12")]),
        "2 80 connections never finishing headers": lambda: slow_connections(url, port, 80, hold=15),
        "3 black PNG 7000x7000 x2": lambda: timed_posts(url, [raw(black_png(7000, 7000), "image/png")] * 2),
        "3 PNG 4000x4000 x 8 min_face sizes": lambda: timed_posts(url, [
            raw(black_png(4000, 4000), "image/png", min_face_size=str(size))
            for size in (20, 24, 28, 32, 40, 48, 64, 80)]),
        "4 TIFF 8000x8000": lambda: timed_posts(url, [raw(tiff_header(8000, 8000), "image/tiff")]),
        "4 JPEG 12000^2 stray byte before SOF": lambda: timed_posts(url, [
            raw(jpeg_frame(BIG, BIG, b"\x00"), "image/jpeg")]),
        "4 JPEG 12000^2 after 1.1 MiB of APP1": lambda: timed_posts(url, [
            raw(jpeg_frame(BIG, BIG, (b"\xff\xe1\xff\xff" + bytes(0xFFFD)) * 17), "image/jpeg")]),
        "4 JPEG 60000^2 stray byte": lambda: timed_posts(url, [raw(jpeg_frame(60000, 60000, b"\x00"), "image/jpeg")]),
        "5 multipart 10 MiB, 201k parts": lambda: timed_posts(url, [
            raw(many_parts(10 * 1024 * 1024 - 100), "multipart/form-data; boundary=b")]),
        "6 300 connections (limit 256)": lambda: slow_connections(url, port, 300, hold=15),
        "6 image/gif content type": lambda: timed_posts(url, [
            raw(cv2.imencode(".gif", cv2.imread(str(GROUP)))[1].tobytes(), "image/gif")]),
    }


def warm_baseline(url: str, pid: int) -> float:
    """RSS (MB) after 20 ordinary requests (the group photo), once the server has settled for 2 s."""
    body = GROUP.read_bytes()
    with httpx.Client(timeout=30) as http:
        for _ in range(20):
            http.post(url + "/v1/detect", content=body, headers={"content-type": "image/jpeg"})
    time.sleep(2)
    return proc_status(pid, "VmRSS")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load.abuse", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cases", nargs="*", default=None, help="case numbers to run (default: all)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before the RSS-after sample")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    port = free_port()
    server = Server(port, "--workers", str(args.workers)).start()
    rows = []
    try:
        baseline = warm_baseline(server.url, server.pid)
        print(f"warm baseline RSS {baseline:.0f} MB (server pid {server.pid}, {args.workers} workers)")
        for name, run in cases(server.url, port).items():
            if args.cases and name.split()[0] not in args.cases:
                continue
            with Watch(server.url, server.pid) as watch:
                started = time.perf_counter()
                result = run()
                elapsed = time.perf_counter() - started
            time.sleep(args.settle)
            answered = [seconds for seconds in watch.healthz if seconds != float("inf")]
            row = {"case": name, **result, "case_s": round(elapsed, 1),
                   "healthz_worst_ms": round(max(answered) * 1000) if answered else None,
                   "healthz_polls": len(watch.healthz), "healthz_not_200": len(watch.healthz) - len(answered),
                   "rss_peak_mb": round(max(watch.rss or [float("nan")])),
                   "rss_after_mb": round(proc_status(server.pid, "VmRSS")), "baseline_mb": round(baseline)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        server.stop()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
