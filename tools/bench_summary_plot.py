"""Plots for the tools/bench scenarios whose drivers print only summary lines (domain, store, scale).

Reads `NAME-bench… key=value …` lines (a saved bench output, or lines pasted from docs/BENCHMARKS.md)
and draws <out-dir>/<scenario>.png for every scenario it finds:

  domain  time (wall and CPU) and peak memory, ours beside networkx, per graph size
  store   durable claim+complete per second by worker count, pgbench's TPS as a line
  scale   server RSS idle and with the streams open, and CPU, per stream count

  .venv/bin/python tools/bench_summary_plot.py OUTPUT.txt [...] --out-dir docs/bench
"""
import argparse
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LINE = re.compile(r"^([a-z0-9]+)-bench(-[a-z0-9]+)?\s+(.*)$")


def parse(paths):
    """{(scenario, variant): [fields]} in file order; variant is "" for the summary line itself."""
    found = {}
    for path in paths:
        for line in open(path):
            match = LINE.match(line.strip().strip("`"))
            if not match:
                continue
            fields = dict(pair.split("=", 1) for pair in match.group(3).split() if "=" in pair)
            found.setdefault((match.group(1), (match.group(2) or "").lstrip("-")), []).append(fields)
    return found


def number(fields, key):
    return float(fields[key]) if key in fields and fields[key] not in ("n/a", "") else None


def plot_domain(runs, out):
    # One bar group per graph size; the fastest of the recorded runs of that size.
    best = {}
    for fields in runs:
        size = f"{int(fields['tasks']):,} tasks\n{int(fields['edges']):,} edges"
        if size not in best or number(fields, "ours_ms") < number(best[size], "ours_ms"):
            best[size] = fields
    sizes = list(best)
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.2
    for offset, (key, label, color) in enumerate([
        ("ours_ms", "ours, wall", "#3b7dd8"), ("ours_cpu_ms", "ours, CPU", "#8fb5ea"),
        ("networkx_ms", "networkx, wall", "#d8553b"), ("networkx_cpu_ms", "networkx, CPU", "#eba08f"),
    ]):
        values = [number(best[size], key) or 0 for size in sizes]
        left.bar([i + (offset - 1.5) * width for i in range(len(sizes))], values, width, label=label, color=color)
    left.set_xticks(range(len(sizes)), sizes)
    left.set_yscale("log")
    left.set_ylabel("ms (log scale)")
    left.set_title("domain: validate + analyse a generated DAG")
    left.legend()
    for offset, (key, label, color) in enumerate([("ours_peak_mib", "ours", "#3b7dd8"), ("networkx_peak_mib", "networkx", "#d8553b")]):
        values = [number(best[size], key) or 0 for size in sizes]
        bars = right.bar([i + (offset - 0.5) * 0.35 for i in range(len(sizes))], values, 0.35, label=label, color=color)
        right.bar_label(bars, labels=[f"{value:,.0f}" for value in values])
    right.set_xticks(range(len(sizes)), sizes)
    right.set_ylabel("peak memory, MiB")
    right.set_title("memory")
    right.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def plot_store(claims, summary, out):
    figure, axis = plt.subplots(figsize=(7, 4.5))
    workers = [f"{fields['workers']} workers" for fields in claims]
    rates = [number(fields, "claim_complete_per_s") for fields in claims]
    bars = axis.bar(workers, rates, color="#3b7dd8")
    axis.bar_label(bars, labels=[f"{rate:,.0f}\n({fields.get('completions_per_txn', '?')}/txn)" for rate, fields in zip(rates, claims)])
    if summary and number(summary[-1], "pgbench_tps"):
        tps = number(summary[-1], "pgbench_tps")
        axis.axhline(tps, color="#d8553b", linestyle="--", label=f"pgbench, one comparable transaction: {tps:,.0f} TPS")
        axis.legend(loc="upper left")
    axis.set_ylim(0, max(rates + [number(summary[-1], "pgbench_tps") or 0 if summary else 0]) * 1.25)
    axis.set_ylabel("claim + complete per second (durable)")
    axis.set_title("store: batched claim and completion")
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def plot_scale(runs, out):
    runs = sorted(runs, key=lambda fields: int(fields["streams"]))
    labels = [f"{int(fields['streams']):,} streams\n{fields.get('connections', '?')} conns" for fields in runs]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for offset, (key, label, color) in enumerate([("rss_idle_mib", "idle", "#8fb5ea"), ("rss_mib", "streams open", "#3b7dd8")]):
        values = [number(fields, key) or 0 for fields in runs]
        bars = left.bar([i + (offset - 0.5) * 0.35 for i in range(len(runs))], values, 0.35, label=label, color=color)
        left.bar_label(bars, labels=[f"{value:,.0f}" for value in values])
    left.set_xticks(range(len(runs)), labels)
    left.set_ylabel("orchestratord RSS, MiB")
    left.set_title("scale: memory with idle heartbeating Lease streams")
    left.legend()
    cpu = [number(fields, "cpu_pct") or 0 for fields in runs]
    bars = right.bar(labels, cpu, color="#3b7dd8")
    right.bar_label(bars, labels=[f"{value:.1f} %\n{float(fields.get('heartbeats_per_s', 0)):,.0f} hb/s" for value, fields in zip(cpu, runs)])
    right.set_ylim(0, max(cpu + [1]) * 1.25)
    right.set_ylabel("CPU, % of one core")
    right.set_title("CPU while heartbeating")
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("outputs", nargs="+")
    parser.add_argument("--out-dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    found = parse(args.outputs)
    if found.get(("domain", "")):
        plot_domain(found[("domain", "")], os.path.join(args.out_dir, "domain.png"))
    if found.get(("store", "claim")):
        plot_store(found[("store", "claim")], found.get(("store", "")), os.path.join(args.out_dir, "store.png"))
    if found.get(("scale", "")):
        plot_scale(found[("scale", "")], os.path.join(args.out_dir, "scale.png"))


if __name__ == "__main__":
    main()
