"""Benchmark suites for jnst (run with ``pytest benchmarks/ --benchmark-only``; see README.md).

A package so that its modules (``benchmarks.test_vgg`` ...) never clash with ``tests/``'s
modules of the same base name when both folders are collected in one session.
"""
