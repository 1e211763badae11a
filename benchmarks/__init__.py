"""Benchmarks: `python -m benchmarks NAME [args]` prints figures; never part of the test suite."""
