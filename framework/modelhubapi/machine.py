"""What the machine gives this process: the CPU cores it may use.

A container's CPU limit (`docker run --cpus=2`, a Kubernetes limit) is a share of time, not a
set of cores: the process still sees every core of the host. So the count is the cores the
process may run on, capped by the cgroup's CPU quota when there is one.
"""

from __future__ import annotations

import math
import os

# cgroup v2 keeps "<quota> <period>" (or "max <period>") in one file; v1 in two.
_CGROUP_V2_CPU_MAX = "/sys/fs/cgroup/cpu.max"
_CGROUP_V1_QUOTA = "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"
_CGROUP_V1_PERIOD = "/sys/fs/cgroup/cpu/cpu.cfs_period_us"


def usable_cores() -> int:
    """The cores this process may keep busy at once (at least 1)."""
    if hasattr(os, "sched_getaffinity"):  # Linux; elsewhere every core is usable
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def _cgroup_cpu_quota() -> float | None:
    """How many cores' worth of time the cgroup allows; None if unlimited or unknown."""
    try:
        quota, period = _read(_CGROUP_V2_CPU_MAX).split()[:2]
    except (OSError, ValueError):
        try:
            quota, period = _read(_CGROUP_V1_QUOTA), _read(_CGROUP_V1_PERIOD)
        except OSError:
            return None
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:  # "max": no limit
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def _read(path: str) -> str:
    with open(path, encoding="ascii") as file:
        return file.read().strip()
