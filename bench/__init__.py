"""Benchmarks: ``python -m bench`` (``make bench``) runs them and writes ``bench/results/``."""
