"""Benchmarks: numbers, not assertions (run with ``python -m benchmarks.<name>``)."""
