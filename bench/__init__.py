"""fastmtcnn benchmarks (not part of the installed package; see bench/README.md).

- ``pytest bench/ --benchmark-only``: pytest-benchmark suite (end to end, per stage, bare forwards, kernels).
- ``python -m bench.gate BASELINE NEW``: regression gate on pytest-benchmark JSON files.
- ``python -m bench.run``: run the suite several times and gate the median of medians against the baseline.
- ``python -m bench.paper_table``: our runtime next to the MTCNN paper's Table I -> bench/results/paper_table.md.
"""
