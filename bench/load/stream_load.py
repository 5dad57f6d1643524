"""Load check of the live stream, WebSocket /v1/stream: N clients streaming 640x480 JPEG frames at a fixed rate.

    python -m bench.load.stream_load --streams 16 --fps 10 --duration 60 --workers 2   # starts its own server
    python -m bench.load.stream_load --url http://127.0.0.1:8080 --streams 4           # an already running one

Each client sends frames of a moving scene (the group photo panning, pre-encoded) on a fixed schedule, then
waits for the last answers and closes. Meanwhile /healthz is polled every 0.2 s and the server's RSS sampled.
Prints one JSON report and exits 1 unless: every frame got exactly one answer (faces, or dropped with a reason,
or an error), /metrics counted the same frames by outcome, /healthz always answered 200 within 1 s, the
server's RSS stayed under --max-rss-mb (1536), and no stream or TCP connection was left open after the clients
left. Needs the server extra and httpx (pip install '.[test]').
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import cv2
import httpx
import numpy as np
from websockets.asyncio.client import connect

from .http_load import GROUP, Server, free_port, proc_status


def pan_frames(count: int = 60, step: int = 2) -> List[bytes]:
    """JPEGs (quality 85) of the 640x480 group photo panning `step` px a frame and back: faces that move."""
    group = cv2.imread(str(GROUP))
    frames = []
    for k in range(count):
        shift = step * (k if k < count // 2 else count - k)
        frame = np.roll(group, shift, axis=1)
        frames.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    return frames


def stream_counts(metrics_text: str) -> Dict[str, float]:
    """fastmtcnn_stream_frames_total by its labels, e.g. {'outcome="answered"': 12, ...}."""
    counts = {}
    for line in metrics_text.splitlines():
        if line.startswith("fastmtcnn_stream_frames_total{"):
            counts[line.split("{", 1)[1].split("}")[0]] = float(line.rsplit(" ", 1)[1])
    return counts


def gauge(metrics_text: str, name: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


def established_connections(pid: int, port: int) -> int:
    """TCP connections of process `pid`'s network namespace in state ESTABLISHED on local port `port`."""
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                count += 1
    return count


class Watch(threading.Thread):
    """Polls /healthz every `period` s (latency of each, failures) and samples the server's VmRSS."""

    def __init__(self, url: str, pid: Optional[int], period: float = 0.2):
        super().__init__(daemon=True)
        self.url, self.pid, self.period = url, pid, period
        self.latencies: List[float] = []
        self.failures: List[str] = []
        self.rss_mb: List[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    status = http.get(self.url + "/healthz").status_code
                    if status != 200:
                        self.failures.append(f"status {status}")
                except httpx.HTTPError as error:
                    self.failures.append(type(error).__name__)
                self.latencies.append(time.perf_counter() - started)
                if self.pid is not None:
                    self.rss_mb.append(proc_status(self.pid, "VmRSS"))
                self.stop.wait(self.period)


async def one_stream(url: str, frames: List[bytes], fps: float, duration: float, drain: float) -> Dict[str, Any]:
    """Send frames on a fixed schedule for `duration` s, wait up to `drain` s for the last answers, close."""
    answers: Dict[int, Dict[str, Any]] = {}
    duplicates = 0
    sent = 0
    send_wait = 0.0  # seconds inside ws.send: TCP back-pressure when the server reads slower than we send
    async with connect(url, max_size=None, open_timeout=30, close_timeout=5) as ws:
        async def receive() -> None:
            nonlocal duplicates
            async for message in ws:
                answer = json.loads(message)
                duplicates += answer["frame"] in answers
                answers[answer["frame"]] = answer

        receiver = asyncio.create_task(receive())
        start = time.monotonic()
        while time.monotonic() - start < duration:
            before = time.monotonic()
            await ws.send(frames[sent % len(frames)])
            send_wait += time.monotonic() - before
            sent += 1
            await asyncio.sleep(max(0.0, start + sent / fps - time.monotonic()))
        end = time.monotonic() + drain
        while len(answers) < sent and time.monotonic() < end:
            await asyncio.sleep(0.05)
        receiver.cancel()
    kinds = collections.Counter(a["type"] if a["type"] != "dropped" else "dropped:" + a["reason"]
                                for a in answers.values())
    kinds.update("error:" + a["error"]["code"] for a in answers.values() if a["type"] == "error")
    faces = [a for a in answers.values() if a["type"] == "faces"]
    track_ms = sorted(a["timing_ms"]["total"] for a in faces)
    return {"sent": sent, "answered": len(answers), "duplicates": duplicates, "kinds": dict(kinds),
            "send_wait_s": send_wait, "full_passes": sum(a["full_pass"] for a in faces),
            "with_faces": sum(bool(a["faces"]) for a in faces),
            "steps_ms": {step: [a["timing_ms"][step] for a in faces] for step in ("queue", "decode", "track")},
            "ids": len({f["id"] for a in answers.values() if a["type"] == "faces" for f in a["faces"]}),
            "latency_ms_p50": track_ms[len(track_ms) // 2] if track_ms else None}


async def run_streams(url: str, streams: int, fps: float, duration: float, drain: float) -> List[Dict[str, Any]]:
    frames = pan_frames()
    ws_url = url.replace("http://", "ws://", 1) + "/v1/stream"
    return await asyncio.gather(*(one_stream(ws_url, frames, fps, duration, drain) for _ in range(streams)))


def _median(values: List[float]) -> Optional[float]:
    return round(sorted(values)[len(values) // 2], 1) if values else None


def check(url: str, pid: Optional[int], port: int, args: argparse.Namespace) -> Dict[str, Any]:
    before = stream_counts(httpx.get(url + "/metrics", timeout=10).text)
    watch = Watch(url, pid)
    watch.start()
    started = time.monotonic()
    results = asyncio.run(run_streams(url, args.streams, args.fps, args.duration, args.drain))
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # the server notices the closes
    watch.stop.set()
    watch.join(10)
    text = httpx.get(url + "/metrics", timeout=10).text
    after = stream_counts(text)
    delta = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}
    kinds: collections.Counter = collections.Counter()
    for result in results:
        kinds.update({k: v for k, v in result["kinds"].items() if not k.startswith("error:")})
    sent = sum(r["sent"] for r in results)
    answered = sum(r["answered"] for r in results)
    client_side = {'outcome="answered"': kinds["faces"], 'outcome="error"': kinds["error"],
                   **{f'outcome="dropped",reason="{k.split(":", 1)[1]}"': v for k, v in kinds.items()
                      if k.startswith("dropped:")}}
    server_side = {'outcome="answered"': delta.get('outcome="answered"', 0),
                   'outcome="error"': sum(v for k, v in delta.items() if k.startswith('outcome="error"')),
                   **{k: v for k, v in delta.items() if k.startswith('outcome="dropped"')}}
    latencies = sorted(watch.latencies)
    report = {
        "streams": args.streams, "fps": args.fps, "duration_s": args.duration, "elapsed_s": round(elapsed, 1),
        "frames_sent": sent, "frames_planned": int(args.streams * args.fps * args.duration),
        "send_wait_s_median": round(sorted(r["send_wait_s"] for r in results)[len(results) // 2], 1),
        "frames_answered": answered, "unanswered": sent - answered,
        "duplicate_answers": sum(r["duplicates"] for r in results), "answers": dict(kinds),
        "faces_per_stream_min": min(r["kinds"].get("faces", 0) for r in results),
        "faces_per_second": round(kinds["faces"] / args.duration, 1),
        "frame_latency_ms_p50_median": sorted(r["latency_ms_p50"] or 0 for r in results)[len(results) // 2],
        "full_passes": sum(r["full_passes"] for r in results),
        "answers_with_faces": sum(r["with_faces"] for r in results),
        "step_ms_p50": {step: _median([v for r in results for v in r["steps_ms"][step]])
                        for step in ("queue", "decode", "track")},
        "metrics_delta": delta, "metrics_match": {k: v for k, v in client_side.items() if v} ==
        {k: v for k, v in server_side.items() if v},
        "healthz_polls": len(latencies), "healthz_failures": len(watch.failures),
        "healthz_ms_p50": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
        "healthz_ms_max": round(latencies[-1] * 1000, 1) if latencies else None,
        "rss_mb_max": round(max(watch.rss_mb), 1) if watch.rss_mb else None,
        "vmhwm_mb": round(proc_status(pid, "VmHWM"), 1) if pid is not None else None,
        "streams_open_after": gauge(text, "fastmtcnn_streams_open"),
        "connections_open_after": established_connections(pid, port) if pid is not None else None,
    }
    report["ok"] = bool(report["unanswered"] == 0 and report["duplicate_answers"] == 0 and report["metrics_match"]
                        and report["healthz_failures"] == 0 and latencies and latencies[-1] < 1.0
                        and (report["rss_mb_max"] is None or report["rss_mb_max"] < args.max_rss_mb)
                        and report["streams_open_after"] == 0 and not report["connections_open_after"])
    return report


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="stream_load.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--fps", type=float, default=10.0, help="frames per second each client sends")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sending")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for the last answers")
    parser.add_argument("--workers", type=int, default=2, help="detection threads of the started server")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV/Numba threads of the started server")
    parser.add_argument("--max-rss-mb", type=float, default=1536.0)
    args = parser.parse_args(argv)
    server = None
    if args.url:
        url, pid, port = args.url.rstrip("/"), None, int(args.url.rsplit(":", 1)[1].split("/")[0])
    else:
        port = free_port()
        server = Server(port, "--workers", str(args.workers), "--threads", str(args.threads),
                        "--max-streams", str(max(32, args.streams))).start()
        url, pid = server.url, server.pid
    try:
        report = check(url, pid, port, args)
    finally:
        if server is not None:
            server.stop()
    print(json.dumps(report, indent=1))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
