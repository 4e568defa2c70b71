"""Benchmarks: ``python -m bench [name ...]``. Each ``bench/bench_<name>.py`` has ``run() -> dict``
and measures ratios against a baseline run in the same process (machines are shared and noisy)."""
