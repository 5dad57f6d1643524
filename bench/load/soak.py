"""Soak test of `fastmtcnn serve`: many requests of mixed sizes and formats, server RSS tracked over time.

    python -m bench.load.soak --requests 10000 --max-seconds 300 --clients 8 --workers 2

Starts the server on 127.0.0.1 (a free port), sends up to `--requests` requests (stops at `--max-seconds`),
checks every answer against the serial in-process result, and samples the server's VmRSS. The RSS after
warm-up (the first `--warmup` requests) is compared with the RSS at the end: flat means growth < 5%.
Prints one JSON report; exit code 1 on a wrong answer, an error, or growth >= 5%.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

from .http_load import Server, expected_faces, free_port, mixed_bodies, proc_status, run_load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--warmup", type=int, default=500, help="requests before the baseline RSS sample")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--queue-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="server OpenCV/Numba threads")
    args = parser.parse_args()

    bodies = mixed_bodies(count=12)
    expected = expected_faces(bodies)
    extra = ["--workers", str(args.workers), "--queue-size", str(args.queue_size)]
    if args.threads is not None:
        extra += ["--threads", str(args.threads)]
    server = Server(free_port(), *extra).start()
    samples = []  # (request count, seconds, VmRSS MB)
    baseline = {}
    started = time.monotonic()
    lock = threading.Lock()
    next_sample = [0]

    def on_request(count: int) -> None:
        with lock:
            if count == args.warmup and not baseline:
                baseline.update(requests=count, rss_mb=proc_status(server.pid, "VmRSS"))
            if count >= next_sample[0]:
                next_sample[0] = count + max(100, args.requests // 50)
                samples.append((count, round(time.monotonic() - started, 1), round(proc_status(server.pid, "VmRSS"), 1)))

    try:
        report = run_load(server.url, bodies, expected, args.clients, args.max_seconds, args.requests,
                          on_request=on_request)
        end_rss = proc_status(server.pid, "VmRSS")
        peak = proc_status(server.pid, "VmHWM")
    finally:
        server.stop()
    if not baseline and samples:
        baseline.update(requests=samples[0][0], rss_mb=samples[0][2])
    growth = (end_rss / baseline["rss_mb"] - 1) * 100 if baseline else float("nan")
    report.update({"images": {name: len(body) for name, body in bodies.items()}, "workers": args.workers,
                   "queue_size": args.queue_size, "rss_after_warmup_mb": round(baseline.get("rss_mb", 0), 1),
                   "warmup_requests": baseline.get("requests"), "rss_end_mb": round(end_rss, 1),
                   "rss_growth_pct": round(growth, 2), "peak_rss_mb": round(peak, 1),
                   "rss_samples": samples, "server_log": server.log.name})
    report["pass"] = (report["mismatches"] == 0 and not report["client_errors"] and not report["hung_clients"]
                      and set(report["statuses"]) <= {"200"} and growth < 5)
    print(json.dumps(report, indent=2))
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
