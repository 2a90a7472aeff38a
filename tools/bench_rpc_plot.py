"""Plot of tools/bench rpc: medians per method, connection count and streams, ours beside the peer.

  bench_rpc_plot.py RESULTS_JSONL OUT.png [--title TEXT]

Top row: req/s (log scale, with the ratio ours/peer over each pair); bottom row: p99 latency in
ms (log scale, the issue's 5 ms target as a dashed line). One column per streams value (h2load
-m), so the bounded-load latency runs (-m 1) and the throughput runs (-m 32) sit side by side.
"""
import argparse
import json
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"ours": "#3b7dd8", "peer": "#d8553b"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("out")
    parser.add_argument("--title", default="tools/bench rpc")
    args = parser.parse_args()

    runs = [json.loads(line) for line in open(args.results) if line.strip()]
    groups: dict[tuple, list] = {}
    for run in runs:
        key = (run.get("streams", 32), run.get("method", "echo"), run["conns"], run["server"])
        groups.setdefault(key, []).append(run)

    def median(key, field):
        return statistics.median(run[field] for run in groups[key]) if key in groups else None

    streams_values = sorted({key[0] for key in groups})
    cases = sorted({(key[1], key[2]) for key in groups})
    figure, axes = plt.subplots(2, len(streams_values), figsize=(6 * len(streams_values), 8), squeeze=False)
    width = 0.38
    for column, streams in enumerate(streams_values):
        rate_axis, p99_axis = axes[0][column], axes[1][column]
        for offset, server in ((-width / 2, "ours"), (width / 2, "peer")):
            positions = [index + offset for index in range(len(cases))]
            rates = [median((streams, method, conns, server), "rps") or 0 for method, conns in cases]
            p99s = [median((streams, method, conns, server), "p99_ms") or 0 for method, conns in cases]
            label = "ours (NGRPC)" if server == "ours" else "grpc-swift-2 peer"
            rate_bars = rate_axis.bar(positions, rates, width, color=COLOURS[server], label=label)
            rate_axis.bar_label(rate_bars, labels=[f"{rate:,.0f}" for rate in rates], fontsize=7)
            p99_bars = p99_axis.bar(positions, p99s, width, color=COLOURS[server], label=label)
            p99_axis.bar_label(p99_bars, labels=[f"{p99:.2f}" for p99 in p99s], fontsize=7)
        for index, (method, conns) in enumerate(cases):
            ours = median((streams, method, conns, "ours"), "rps")
            peer = median((streams, method, conns, "peer"), "rps")
            if ours and peer:
                rate_axis.annotate(
                    f"{ours / peer:.1f}×", (index, max(ours, peer)), textcoords="offset points", xytext=(0, 14),
                    ha="center", fontsize=9, fontweight="bold")
        names = [f"{method}\nc={conns}" for method, conns in cases]
        for axis in (rate_axis, p99_axis):
            axis.set_xticks(range(len(cases)), names)
            axis.set_yscale("log")
        rate_axis.set_title(f"-m {streams}: req/s (median of rounds)")
        rate_axis.set_ylabel("requests / s")
        rate_axis.margins(y=0.25)
        p99_axis.axhline(5, color="black", linestyle="--", linewidth=1, label="target p99 5 ms")
        p99_axis.set_title(f"-m {streams}: p99 latency")
        p99_axis.set_ylabel("ms")
        p99_axis.legend(loc="upper left", fontsize=8)
        rate_axis.legend(loc="upper right", fontsize=8)
    figure.suptitle(args.title)
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
