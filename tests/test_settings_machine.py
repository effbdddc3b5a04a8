"""The cores a process may use: its affinity, capped by a container's CPU quota."""

from __future__ import annotations

import os

import pytest

from modelhubapi import machine


@pytest.fixture
def cgroup(monkeypatch, tmp_path):
    """Stand-in cgroup files (absent until written) and 8 cores to run on."""
    paths = {
        "v2": tmp_path / "cpu.max",
        "v1_quota": tmp_path / "cpu.cfs_quota_us",
        "v1_period": tmp_path / "cpu.cfs_period_us",
    }
    monkeypatch.setattr(machine, "_CGROUP_V2_CPU_MAX", str(paths["v2"]))
    monkeypatch.setattr(machine, "_CGROUP_V1_QUOTA", str(paths["v1_quota"]))
    monkeypatch.setattr(machine, "_CGROUP_V1_PERIOD", str(paths["v1_period"]))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    return paths


def test_without_a_quota_every_core_of_the_affinity_counts(cgroup):
    assert machine.usable_cores() == 8
    cgroup["v2"].write_text("max 100000\n")
    assert machine.usable_cores() == 8


@pytest.mark.parametrize(("quota", "cores"), [("200000 100000", 2), ("150000 100000", 2)])
def test_a_cgroup_v2_quota_caps_the_count(cgroup, quota, cores):
    cgroup["v2"].write_text(quota + "\n")
    assert machine.usable_cores() == cores


def test_a_cgroup_v1_quota_caps_the_count(cgroup):
    cgroup["v1_quota"].write_text("50000\n")
    cgroup["v1_period"].write_text("100000\n")
    assert machine.usable_cores() == 1
    cgroup["v1_quota"].write_text("-1\n")  # unlimited
    assert machine.usable_cores() == 8


def test_a_quota_above_the_affinity_does_not_raise_the_count(cgroup):
    cgroup["v2"].write_text("1600000 100000\n")
    assert machine.usable_cores() == 8


def test_without_affinity_the_core_count_is_used(cgroup, monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert machine.usable_cores() == 3
