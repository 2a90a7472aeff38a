"""Number-crunching for tools/bench.d/rpc: checks one h2load run and summarises all of them.

  bench_rpc_stats.py run METHOD SERVER CONNS STREAMS H2LOAD_OUTPUT LOG_FILE SERVER_CORES   print one JSON result line
  bench_rpc_stats.py summary RESULTS_JSONL                    print the table and summary lines

A run is rejected (exit 1) unless every request finished with HTTP 2xx: h2load's own totals and
its per-request log must agree. Percentiles come from the log (h2load prints only mean/sd/max).
SERVER_CORES is the server's CPU time over the run divided by its wall time; with req/s it gives
the server's CPU cost per request, which depends less than req/s on what else shares the cores.
STREAMS is h2load's -m (requests in flight per connection); result lines written before it
existed count as 32, the only value then. The last summary line is throughput at the latency
objective: at the most connections, the highest streams value whose p99 (ours) stayed under 5 ms.
"""

import json
import math
import re
import statistics
import sys

# The latency objective for the summary line: p99 under 5 ms.
P99_OBJECTIVE_MS = 5.0


def nearest_rank(sorted_values, fraction):
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def parse_run(method, server, conns, streams, output_path, log_path, server_cores):
    text = open(output_path).read()
    finished = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", text)
    requests = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        text,
    )
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not (finished and requests and codes):
        sys.exit(f"{server} c={conns}: cannot read h2load output {output_path}")
    _, _, done, succeeded, failed, errored, timeout = map(int, requests.groups())
    ok_2xx, other_codes = int(codes.group(1)), sum(map(int, codes.groups()[1:]))
    # h2load counts a status when the response headers arrive and a request as done when it
    # ends, and resets both at the end of the warm-up: a call in flight at that moment can land
    # in one count and not the other (seen as 1-2 apart on PlanWorkflow). So the 2xx count may
    # differ from done by at most the calls in flight; any non-2xx status still rejects the run,
    # and every request in the per-request log must be 200.
    if (done == 0 or failed or errored or timeout or succeeded != done or other_codes
            or abs(ok_2xx - done) > conns * streams):
        sys.exit(f"{server} c={conns}: not all requests were 2xx: {requests.group(0)}; {codes.group(0)}")

    latencies_us = []
    unknown_status = 0
    with open(log_path) as log:
        for line in log:
            columns = line.rstrip("\n").split("\t")
            # Status 0: the response headers came before the warm-up reset wiped them, the end
            # after (h2load still counted the request succeeded). Same bound as above; left out.
            if columns[1] == "0" and unknown_status < conns * streams:
                unknown_status += 1
                continue
            if columns[1] != "200":
                sys.exit(f"{server} c={conns}: a logged request ended with status {columns[1]}")
            latencies_us.append(int(columns[2]))
    if not latencies_us:
        sys.exit(f"{server} c={conns}: empty per-request log {log_path}")
    latencies_us.sort()
    return {
        "method": method,
        "server": server,
        "conns": conns,
        "streams": streams,
        "rps": float(finished.group(1)),
        "requests": done,
        "p50_ms": nearest_rank(latencies_us, 0.50) / 1000,
        "p99_ms": nearest_rank(latencies_us, 0.99) / 1000,
        "server_cores": server_cores,
        "cpu_us_per_req": server_cores * 1e6 / float(finished.group(1)),
    }


def summarise(results_path):
    runs = [json.loads(line) for line in open(results_path) if line.strip()]
    by_key = {}
    for run in runs:
        key = (run.get("method", "echo"), run["conns"], run.get("streams", 32), run["server"])
        by_key.setdefault(key, []).append(run)

    def median(method, conns, streams, server, field):
        values = [run[field] for run in by_key.get((method, conns, streams, server), [])]
        return statistics.median(values) if values else None

    def show(value, digits):
        return "n/a" if value is None else f"{value:.{digits}f}"

    methods = list(dict.fromkeys(run.get("method", "echo") for run in runs))
    conns_counts = sorted({run["conns"] for run in runs})
    streams_values = sorted({run.get("streams", 32) for run in runs})
    print("| method | conns | streams | server | runs | req/s | p50 ms | p99 ms | server cores busy | server CPU µs/req |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for method in methods:
        for conns in conns_counts:
            for streams in streams_values:
                for server in ("ours", "peer"):
                    key = (method, conns, streams, server)
                    if key in by_key:
                        print(
                            f"| {method} | {conns} | {streams} | {server} | {len(by_key[key])} "
                            f"| {show(median(*key, 'rps'), 0)} "
                            f"| {show(median(*key, 'p50_ms'), 2)} "
                            f"| {show(median(*key, 'p99_ms'), 2)} "
                            f"| {show(median(*key, 'server_cores'), 2)} "
                            f"| {show(median(*key, 'cpu_us_per_req'), 1)} |"
                        )
    def figures(method, conns, streams):
        """ours_rps=… peer_rps=… ratio=… ours_p99_ms=… peer_p99_ms=… of one setting."""
        ours, peer = median(method, conns, streams, "ours", "rps"), median(method, conns, streams, "peer", "rps")
        ratio = ours / peer if ours is not None and peer else None
        return (f"ours_rps={show(ours, 0)} peer_rps={show(peer, 0)} ratio={show(ratio, 2)} "
                f"ours_p99_ms={show(median(method, conns, streams, 'ours', 'p99_ms'), 2)} "
                f"peer_p99_ms={show(median(method, conns, streams, 'peer', 'p99_ms'), 2)}")

    # One line per setting, by streams value.
    for streams in streams_values:
        for method in methods:
            for conns in conns_counts:
                if not any((method, conns, streams, server) in by_key for server in ("ours", "peer")):
                    continue
                print(f"rpc-bench method={method} conns={conns} streams={streams} {figures(method, conns, streams)}")
    # Last, the figure: throughput at a latency objective. For the first method at the
    # most connections, the most streams per connection at which our p99 stayed under 5 ms, with
    # the peer under the same load (it is not held to the objective: its p99 is shown).
    method, conns = methods[0], conns_counts[-1]
    within = [streams for streams in streams_values
              if (median(method, conns, streams, "ours", "p99_ms") or math.inf) < P99_OBJECTIVE_MS]
    if within:
        streams = within[-1]
        print(f"rpc-bench conns={conns} method={method} streams={streams} p99_objective_ms={P99_OBJECTIVE_MS:g} "
              f"{figures(method, conns, streams)}")
    else:
        print(f"rpc-bench conns={conns} method={method} p99_objective_ms={P99_OBJECTIVE_MS:g} "
              f"ours_rps=n/a peer_rps=n/a ratio=n/a ours_p99_ms=n/a peer_p99_ms=n/a (no streams value kept p99 under it)")

def main(argv):
    if len(argv) == 9 and argv[1] == "run":
        print(json.dumps(parse_run(argv[2], argv[3], int(argv[4]), int(argv[5]), argv[6], argv[7], float(argv[8]))))
    elif len(argv) == 3 and argv[1] == "summary":
        summarise(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
