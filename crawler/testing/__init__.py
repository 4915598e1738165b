"""Test helpers: generated sites and news hosts for the tests and the benchmarks.

Shipped code never imports this package.  The loopback servers that the demo
serves through as well live in :mod:`crawler.loopback`, which these helpers
build on.
"""
