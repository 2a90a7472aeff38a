"""Plots of tools/bench dispatch|latency|workflow100k: throughput and ready→assignment latency per run.

Reads the JSON that DispatchBench writes (--json) and draws <out-dir>/<scenario>.png: on the left
tasks per second per run (with pgbench's TPS on the same database as a line, when given), on the
right each run's latency distribution as a CDF (log scale), with p50/p99 marked.
"""
import argparse
import json
import math
import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("reports", nargs="+")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--pgbench-tps", type=float)
    # Distinguishes a variant's plot (file name suffix and title), e.g. "durable".
    parser.add_argument("--variant", default="")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for path in args.reports:
        with open(path) as handle:
            report = json.load(handle)
        runs = report["runs"]
        figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
        # Wrapped: three long run labels side by side overlap otherwise.
        labels = [f"{textwrap.fill(run['label'], 18)}\n(load {run['loadAverage']:.1f})" for run in runs]
        rates = [run["tasksPerSecond"] for run in runs]
        bars = left.bar(labels, rates, color="#3b7dd8")
        left.bar_label(bars, labels=[f"{rate:,.0f}" for rate in rates])
        if args.pgbench_tps:
            left.axhline(args.pgbench_tps, color="#d8553b", linestyle="--", label=f"pgbench, one transaction per task: {args.pgbench_tps:,.0f} TPS")
            left.legend(loc="upper left")
        left.set_ylabel("tasks / s (submitted → completed, stored)")
        # "Stored" is what every run measures; "durable" only when PostgreSQL flushed to disk.
        left.set_title(f"{report['scenario']}: {args.variant + ' ' if args.variant else ''}throughput (tasks stored)")
        for run in runs:
            sample = [value for value in run["latencySample"] if value is not None and not math.isnan(value)]
            if not sample:
                continue
            floor = 0.05
            xs = [max(value, floor) for value in sample]
            ys = [(index + 1) / len(xs) for index in range(len(xs))]
            line, = right.plot(xs, ys, label=f"{run['label']}: p50 {run['p50']:.1f} ms, p99 {run['p99']:.1f} ms, max {run['max']:.0f} ms")
            right.axvline(max(run["p99"], floor), color=line.get_color(), linestyle=":", linewidth=1)
        right.set_xscale("log")
        right.set_xlabel("ready → assignment received (ms, log scale)")
        right.set_ylabel("fraction of tasks")
        right.set_title("latency (CDF; dotted: p99)")
        right.axvline(10, color="grey", linestyle="--", linewidth=1)
        right.legend(loc="lower right", fontsize=8)
        figure.tight_layout()
        suffix = f"-{args.variant}" if args.variant else ""
        out = os.path.join(args.out_dir, f"{report['scenario']}{suffix}.png")
        figure.savefig(out, dpi=110)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
