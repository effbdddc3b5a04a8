"""The benchmark's report: the ratios the goals are stated in, the tables, the machine."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
from typing import Any

import numpy as np
import onnxruntime as ort

from squeezenet.modelfiles import DEFAULT_VARIANT


def find(results: list[dict], group: str, variant: str, setting: str) -> dict | None:
    for result in results:
        if (result["group"], result["variant"], result["setting"]) == (group, variant, setting):
            return result
    return None


def paired_ratio(numerators: list[float] | None, denominators: list[float] | None) -> float | None:
    """Median over rounds of the ratio within each round: the two were measured seconds apart,
    so slow drift of the machine cancels out (a ratio of overall medians would not)."""
    if not numerators or not denominators:
        return None
    pairs = [a / b for a, b in zip(numerators, denominators, strict=True) if b]
    return round(float(np.median(pairs)), 3) if pairs else None


def ratios(results: list[dict], args: argparse.Namespace) -> list[dict]:
    """The ratios the goals are stated in, per variant, each the median of per-round ratios.

    The pipeline and server goals are marked on the model served by default (fp32); the
    other variants' rows show what the same fixed costs weigh on a faster model (int8)."""
    rows = []
    clients, threads = f"{args.clients} clients", f"{args.threads} threads"

    def add(name: str, value: float | None, goal: str | None = None) -> None:
        ok = None
        if value is not None and goal:
            op, bound = goal.split()
            ok = value >= float(bound) if op == ">=" else value <= float(bound)
        rows.append({"ratio": name, "value": value, "goal": goal, "ok": ok})

    for variant in args.variants:
        default = variant == DEFAULT_VARIANT

        def rounds(group: str, setting: str, key: str = "rounds", variant: str = variant):
            found = find(results, group, variant, setting)
            return found[key] if found else None

        single, multi = rounds("in-process", "1 thread"), rounds("in-process", threads)
        best = [max(pair) for pair in zip(single, multi, strict=True)] if single and multi else None
        add(
            f"{variant}: in-process 1 thread / ceiling batch 1",
            paired_ratio(single, rounds("ceiling", "batch 1")),
            ">= 0.8" if default else None,
        )
        add(
            f"{variant}: in-process {threads} / ceiling batch 1",
            paired_ratio(multi, rounds("ceiling", "batch 1")),
        )
        if not args.no_server:
            add(
                f"{variant}: server {clients} / best in-process",
                paired_ratio(rounds("server", clients), best),
                ">= 0.9" if default else None,
            )
            add(
                f"{variant}: server 1 client p50 / in-process 1 thread p50",
                paired_ratio(
                    rounds("server", "1 client", "rounds_p50_ms"),
                    rounds("in-process", "1 thread", "rounds_p50_ms"),
                ),
                "<= 1.15" if default else None,
            )
            add(
                f"{variant}: server 1 client / in-process 1 thread",
                paired_ratio(rounds("server", "1 client"), single),
            )
        if variant != "fp32":
            goal = ">= 2.0" if variant == "int8" else None
            for batch in (1, 8):
                add(
                    f"{variant} / fp32: ceiling batch {batch}",
                    paired_ratio(
                        rounds("ceiling", f"batch {batch}"),
                        rounds("ceiling", f"batch {batch}", variant="fp32"),
                    ),
                    goal,
                )
            add(
                f"{variant} / fp32: in-process 1 thread",
                paired_ratio(single, rounds("in-process", "1 thread", variant="fp32")),
            )
    return rows


def print_table(results: list[dict], title: str) -> None:
    print(f"\n{title}")
    print(
        f"{'group':<11}{'variant':<9}{'setting':<40}{'img/s':>8}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'errors':>8}"
    )
    for r in results:
        print(
            f"{r['group']:<11}{r['variant']:<9}{r['setting']:<40}{r['images_per_s']:>8.1f}"
            f"{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}{r['errors']:>8}"
        )


def print_report(report: dict) -> None:
    main = [r for r in report["results"] if not r["lever"]]
    print_table(main, "Main measurements (throughput: median of rounds; latency: pooled)")
    print("\nRatios (this run only; median over rounds of the ratio within each round)")
    for row in report["ratios"]:
        value = "n/a" if row["value"] is None else f"{row['value']:.2f}"
        verdict = "" if row["ok"] is None else ("  ok" if row["ok"] else "  MISSED")
        goal = f"  (goal {row['goal']})" if row["goal"] else ""
        print(f"  {row['ratio']:<58}{value:>6}{goal}{verdict}")
    if report["servers"]:
        print("\nServers")
        for item in report["servers"]:
            print(
                f"  {item['name']:<22} cold start {item['cold_start_s']:.2f} s (goal <= 3)"
                f"   VmRSS {item.get('VmRSS', 0):.0f} MB, peak {item.get('VmHWM', 0):.0f} MB"
                f" (goal <= 250)"
            )
    levers = [r for r in report["results"] if r["lever"]]
    if levers:
        print_table(levers, "Levers (same run; compare with the main rows above)")


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "load_average_at_start": os.getloadavg(),
    }
