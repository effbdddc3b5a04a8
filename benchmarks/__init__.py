"""Benchmarks of the SqueezeNet service (`make bench`, i.e. `python -m benchmarks.run`).

Not tests: they time things, and timings on a shared 2-core machine are only meaningful as
medians and ratios measured in one run. See benchmarks/run.py.
"""

import os
import sys

# The engine and the contributor package on the path, as `make` does with PYTHONPATH, so a
# bare `python -m benchmarks.<script>` finds them (importing this package comes first).
_REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (os.path.join(_REPO_DIR, "contrib_src"), os.path.join(_REPO_DIR, "framework")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
