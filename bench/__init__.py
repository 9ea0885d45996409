"""Benchmarks: each writes its results, with the machine it ran on, to bench/results/."""
