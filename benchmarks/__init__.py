"""Cross-engine benchmarks: Charter vs Cedar, Rego, CEL and hand-written Python.

Run everything with ``python -m benchmarks`` (see docs/performance.md).
"""
