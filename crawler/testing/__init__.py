"""Loopback servers and generated sites for the tests and the benchmarks."""
