"""Benchmarks: wsserver and its peers side by side (see docs/benchmarks.md)."""
