"""Benchmarks of the SqueezeNet service (`make bench`, i.e. `python -m benchmarks.run`).

Not tests: they time things, and timings on a shared 2-core machine are only meaningful as
medians and ratios measured in one run. See benchmarks/run.py.
"""
