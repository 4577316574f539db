"""Benchmarks (`make bench`): measured side by side in one run, written to docs/benchmarks.md.

Not tests: nothing here asserts a time. Each part reports medians/p95 and ratios measured
in the same run on the same machine, and says what limits it.
"""
