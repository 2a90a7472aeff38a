#!/usr/bin/env python3
"""The networkx side of `tools/bench domain`.

Reads the graph file written by `DomainBench generate`, builds a networkx DiGraph (not timed, as our
side's file parsing is not timed), then times is_directed_acyclic_graph + topological_sort +
dag_longest_path, the same work our side does (validate with its topological order, ranks, critical path).

Our critical path weighs tasks (node costs); dag_longest_path weighs edges. To make networkx answer the
same question, every edge u -> v carries weight cost(u), and one virtual sink receives an edge from every
task without successors, weighted with that task's cost: the longest path to the sink then weighs exactly
the sum of the node costs along it. The sink adds one node and a few thousand edges (0.5 % here).

Prints one line: networkx tasks=… edges=… build_ms=… total_ms=… best_ms=… cpu_ms=… critical_path_length=… peak_mib=…
(total_ms is the median wall time of the timed runs, cpu_ms their median process CPU time.)
"""
import argparse
import resource
import sys
import time

import networkx as nx

SINK = "__sink__"


def load(path):
    with open(path, "r", encoding="ascii") as f:
        f.readline()  # comment
        header = f.readline().split()
        n, m = int(header[1]), int(header[3])
        cost = {}
        for _ in range(n):
            key, c = f.readline().split()
            cost[key] = int(c)
        edges = []
        for _ in range(m):
            a, b = f.readline().split()
            edges.append((a, b))
    return n, m, cost, edges


def build(cost, edges):
    g = nx.DiGraph()
    g.add_nodes_from(cost)
    g.add_weighted_edges_from(((a, b, cost[a]) for a, b in edges), weight="w")
    sinks = [v for v in g.nodes if g.out_degree(v) == 0]
    g.add_weighted_edges_from(((v, SINK, cost[v]) for v in sinks), weight="w")
    return g


def analyse(g):
    if not nx.is_directed_acyclic_graph(g):
        raise SystemExit("generated graph has a cycle")
    order = list(nx.topological_sort(g))
    path = nx.dag_longest_path(g, weight="w")
    return order, path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    t0 = time.perf_counter()
    n, m, cost, edges = load(args.file)
    g = build(cost, edges)
    del edges
    build_ms = (time.perf_counter() - t0) * 1000

    times = []
    cpu_times = []
    path = []
    for _ in range(max(1, args.repeat)):
        t = time.perf_counter()
        c = time.process_time()
        order, path = analyse(g)
        times.append((time.perf_counter() - t) * 1000)
        cpu_times.append((time.process_time() - c) * 1000)
        assert len(order) == n + 1
        del order
    length = sum(cost[v] for v in path if v != SINK)
    times.sort()
    median = times[len(times) // 2]
    cpu_times.sort()
    cpu_median = cpu_times[len(cpu_times) // 2]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"networkx tasks={n} edges={m} build_ms={build_ms:.1f} total_ms={median:.1f} best_ms={times[0]:.1f} cpu_ms={cpu_median:.1f}"
        f" runs={len(times)} critical_path_length={length} critical_path_tasks={len([v for v in path if v != SINK])}"
        f" peak_mib={peak_mib:.1f} networkx={nx.__version__} python={sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
