"""HTTP service load, soak, memory and abuse tests (`python -m bench.load.<tool>`, see bench/README.md)."""
