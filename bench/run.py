"""Run the benchmark suite several times, one after the other, and gate it against this machine's baseline.

    python -m bench.run                       # 3 runs -> .benchmarks/runs/<time>/, then bench.gate
    python -m bench.run --repeat 5 --threshold 10
    python -m bench.run --save-baseline       # 3 runs saved as the new bench/baselines/<machine>/ baseline
    python -m bench.run -- -k detect          # extra pytest arguments after --

Each run is `python -m pytest bench/ --benchmark-only`; the gate takes the median of the per-run medians.
--save-baseline replaces the JSON files of bench/baselines/<machine>/ with `--benchmark-autosave` runs
(the old ones stay in git history). Never run two benchmark processes at once on a small machine.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

from . import gate
from .machine import BASELINES_DIR, REPO_ROOT, machine_name


def pytest_command(extra: Sequence[str]) -> List[str]:
    return [sys.executable, "-m", "pytest", "bench/", "--benchmark-only", "-q", "-p", "no:cacheprovider", *extra]


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of the suite (default %(default)s)")
    parser.add_argument("--threshold", type=float, default=gate.DEFAULT_THRESHOLD, help="gate threshold, percent")
    parser.add_argument("--statistic", choices=("median", "min"), default=gate.DEFAULT_STATISTIC,
                        help="per-run statistic the gate compares (default %(default)s)")
    parser.add_argument("--save-baseline", action="store_true",
                        help=f"save the runs as the baseline of this machine ({BASELINES_DIR.name}/{machine_name()}/)")
    parser.add_argument("--baseline", type=Path, default=BASELINES_DIR / machine_name(),
                        help="baseline folder or file (default: this machine's folder)")
    args = parser.parse_args(argv)

    if args.save_baseline:
        storage = args.baseline
        for old in sorted(storage.rglob("*.json")) if storage.exists() else []:
            old.unlink()
        options = ["--benchmark-autosave", f"--benchmark-storage=file://{storage}"]
    else:
        out_dir = REPO_ROOT / ".benchmarks" / "runs" / time.strftime("%Y%m%d-%H%M%S")
        out_dir.mkdir(parents=True, exist_ok=True)
    for k in range(1, args.repeat + 1):
        if not args.save_baseline:
            options = [f"--benchmark-json={out_dir / f'run{k}.json'}"]
        command = pytest_command([*options, *extra])
        print(f"== run {k}/{args.repeat}: {' '.join(command[1:])}", flush=True)
        status = subprocess.call(command, cwd=REPO_ROOT)
        if status != 0:
            print(f"bench.run: pytest exited with {status}", file=sys.stderr)
            return status
    if args.save_baseline:
        print(f"baseline saved: {args.baseline} ({len(list(args.baseline.rglob('*.json')))} JSON files); "
              f"commit it with: git add {args.baseline.relative_to(REPO_ROOT)}")
        return 0
    return gate.main([str(out_dir), "--baseline", str(args.baseline), "--threshold", str(args.threshold),
                      "--statistic", args.statistic])


if __name__ == "__main__":
    sys.exit(main())
