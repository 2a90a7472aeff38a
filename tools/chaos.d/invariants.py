"""The invariant checker: SQL over the schema (docs/SCHEMA.md) once everything is quiet, plus the
load generator's and executors' own records of what the server told them.

Each check is a query whose rows are violations. Every row counts in exactly one of:
  lost        work that vanished: an accepted submission with no workflow, a task left unfinished,
              a task of a succeeded workflow that did not succeed;
  duplicated  work done twice: a task with more than one successful attempt or task_succeeded
              event, two different accepted completions of one task, two workflows for one
              request id;
  violations  everything else the model forbids (states, counters, event log, dependency order,
              clocks, stale reports accepted, workflows not terminal).
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

TERMINAL_TASK = "('succeeded','failed','cancelled','skipped')"

# (name, category, query returning one row per violation). Queries read a quiet database.
CHECKS: list[tuple[str, str, str]] = [
    ("workflow not terminal", "violations",
     "SELECT id, state FROM workflows WHERE state NOT IN ('succeeded','failed','cancelled')"),
    # Nobody cancels in a chaos run: a cancelled workflow is the server's own doing.
    ("workflow cancelled without a cancel request", "violations",
     "SELECT id FROM workflows WHERE state = 'cancelled'"),
    ("task not finished (lost or stuck)", "lost",
     f"SELECT id, workflow_id, key, state FROM tasks WHERE state NOT IN {TERMINAL_TASK}"),
    ("task of a succeeded workflow not succeeded", "lost",
     "SELECT t.id, t.state FROM tasks t JOIN workflows w ON w.id = t.workflow_id "
     "WHERE w.state = 'succeeded' AND t.state <> 'succeeded'"),
    ("failed workflow without a failed task", "violations",
     "SELECT w.id FROM workflows w WHERE w.state = 'failed' "
     "AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.workflow_id = w.id AND t.state = 'failed')"),
    ("task succeeded more than once (attempts)", "duplicated",
     "SELECT task_id, count(*) FROM task_attempts WHERE outcome = 'succeeded' GROUP BY task_id HAVING count(*) > 1"),
    ("task succeeded more than once (events)", "duplicated",
     "SELECT task_id, count(*) FROM workflow_events WHERE type = 'task_succeeded' GROUP BY task_id HAVING count(*) > 1"),
    ("succeeded task without exactly one succeeded attempt, its last", "violations",
     "SELECT t.id, t.attempt, a.attempt FROM tasks t LEFT JOIN task_attempts a ON a.task_id = t.id AND a.outcome = 'succeeded' "
     "WHERE t.state = 'succeeded' AND (a.attempt IS NULL OR a.attempt <> t.attempt OR a.fencing_token <> a.attempt)"),
    ("succeeded task without exactly one task_succeeded event", "violations",
     "SELECT t.id FROM tasks t WHERE t.state = 'succeeded' AND "
     "(SELECT count(*) FROM workflow_events e WHERE e.task_id = t.id AND e.type = 'task_succeeded') <> 1"),
    ("unsucceeded task with a succeeded attempt or event", "violations",
     "SELECT t.id, t.state FROM tasks t WHERE t.state <> 'succeeded' AND (EXISTS "
     "(SELECT 1 FROM task_attempts a WHERE a.task_id = t.id AND a.outcome = 'succeeded') OR EXISTS "
     "(SELECT 1 FROM workflow_events e WHERE e.task_id = t.id AND e.type = 'task_succeeded'))"),
    ("attempts not numbered 1..tasks.attempt", "violations",
     "SELECT t.id, t.attempt, count(a.*), max(a.attempt) FROM tasks t LEFT JOIN task_attempts a ON a.task_id = t.id "
     "GROUP BY t.id, t.attempt HAVING count(a.*) <> t.attempt OR coalesce(max(a.attempt), 0) <> t.attempt"),
    ("task_leased events differ from attempts", "violations",
     "SELECT t.id, t.attempt, (SELECT count(*) FROM workflow_events e WHERE e.task_id = t.id AND e.type = 'task_leased') "
     "FROM tasks t WHERE t.attempt <> (SELECT count(*) FROM workflow_events e WHERE e.task_id = t.id AND e.type = 'task_leased')"),
    ("attempt still running on a finished task", "violations",
     f"SELECT a.task_id, a.attempt FROM task_attempts a JOIN tasks t ON t.id = a.task_id "
     f"WHERE a.outcome = 'running' AND t.state IN {TERMINAL_TASK}"),
    ("finished task still holds a lease", "violations",
     f"SELECT id FROM tasks WHERE state IN {TERMINAL_TASK} AND (lease_owner IS NOT NULL OR lease_expires_at IS NOT NULL)"),
    ("unfinished_upstream differs from the unsucceeded upstream tasks", "violations",
     "SELECT t.id, t.unfinished_upstream, count(u.id) FILTER (WHERE u.state <> 'succeeded') FROM tasks t "
     "LEFT JOIN edges e ON e.downstream_task_id = t.id LEFT JOIN tasks u ON u.id = e.upstream_task_id "
     "GROUP BY t.id, t.unfinished_upstream "
     "HAVING t.unfinished_upstream <> count(u.id) FILTER (WHERE u.state <> 'succeeded')"),
    ("task leased before an upstream task succeeded", "violations",
     "SELECT e.downstream_task_id, e.upstream_task_id FROM edges e "
     "JOIN LATERAL (SELECT min(seq) AS first_lease FROM workflow_events x WHERE x.task_id = e.downstream_task_id "
     "              AND x.type = 'task_leased') d ON d.first_lease IS NOT NULL "
     "LEFT JOIN LATERAL (SELECT min(seq) AS done FROM workflow_events x WHERE x.task_id = e.upstream_task_id "
     "                   AND x.type = 'task_succeeded') u ON true "
     "WHERE u.done IS NULL OR u.done > d.first_lease"),
    ("task state differs from its last event's task_state", "violations",
     "SELECT t.id, t.state, last.task_state FROM tasks t JOIN LATERAL (SELECT task_state FROM workflow_events x "
     "WHERE x.task_id = t.id AND x.task_state IS NOT NULL ORDER BY seq DESC LIMIT 1) last ON true "
     "WHERE last.task_state <> t.state"),
    ("workflow terminal events differ from its state", "violations",
     "SELECT w.id, w.state, string_agg(e.type, ',') FROM workflows w LEFT JOIN workflow_events e ON e.workflow_id = w.id "
     "AND e.type IN ('workflow_succeeded','workflow_failed','workflow_cancelled') GROUP BY w.id, w.state "
     "HAVING count(e.*) <> 1 OR min(e.type) <> 'workflow_' || w.state"),
    ("events appended after the workflow's final transaction", "violations",
     "SELECT e.workflow_id, e.seq, e.type FROM workflow_events e JOIN workflow_events f ON f.workflow_id = e.workflow_id "
     "AND f.type IN ('workflow_succeeded','workflow_failed','workflow_cancelled') WHERE e.seq > f.seq AND e.txid <> f.txid"),
]


@dataclass
class Report:
    workflows: int = 0
    tasks_checked: int = 0
    states: dict = field(default_factory=dict)
    counts: dict = field(default_factory=lambda: {"lost": 0, "duplicated": 0, "violations": 0})
    failures: list = field(default_factory=list)   # (category, name, count, samples)
    facts: dict = field(default_factory=dict)

    def add(self, category: str, name: str, rows: list) -> None:
        if rows:
            self.counts[category] += len(rows)
            self.failures.append((category, name, len(rows), rows[:5]))


class Database:
    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, sql: str, timeout: float = 300) -> list[list[str]]:
        result = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", self.url, "-c", sql],
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}\n{sql}")
        return [line.split("\t") for line in result.stdout.splitlines() if line != ""]

    def value(self, sql: str) -> str:
        return self.rows(sql)[0][0]


def read_ledgers(folder: Path) -> list[dict]:
    entries = []
    for path in sorted(folder.glob("*.ledger")):
        for line in path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # the line a SIGKILL cut short
    return entries


def check(db: Database, submissions, ledger: list[dict], clock_window: tuple[str, str]) -> Report:
    report = Report()
    # The server never looks events up by task, so the schema has no such index; the checks do,
    # once per task. Added to this run's throwaway database only, after the server stopped.
    db.rows("CREATE INDEX IF NOT EXISTS chaos_check_events_task_idx ON workflow_events (task_id, type, seq); "
            "ANALYZE workflow_events; ANALYZE tasks; ANALYZE task_attempts; ANALYZE edges")
    report.workflows = int(db.value("SELECT count(*) FROM workflows"))
    report.tasks_checked = int(db.value("SELECT count(*) FROM tasks"))
    report.states = dict(db.rows("SELECT state, count(*) FROM workflows GROUP BY state ORDER BY state"))
    for name, category, sql in CHECKS:
        report.add(category, name, db.rows(sql))

    # Submissions: every accepted one is stored once, under the id it was answered with.
    stored = {r[0]: r[1] for r in db.rows("SELECT request_id, id FROM workflows")}
    report.add("lost", "accepted submission without its workflow",
               [s.request_id for s in submissions if s.workflow_id and s.request_id not in stored])
    report.add("violations", "submission never accepted",
               [s.request_id for s in submissions if not s.workflow_id])
    report.add("duplicated", "request id answered with two workflow ids",
               [(s.request_id, s.workflow_id, s.conflicting_ids) for s in submissions if s.conflicting_ids])
    report.add("duplicated", "stored workflow differs from the one the submitter was given",
               [(s.request_id, s.workflow_id, stored[s.request_id]) for s in submissions
                if s.workflow_id and s.request_id in stored and stored[s.request_id] != s.workflow_id])
    expected = {s.request_id for s in submissions}
    report.add("violations", "workflow nobody submitted", [r for r in stored if r not in expected])

    # Clocks: every instant the server wrote lies within the run, by the database's clock — an
    # executor's skewed clock must not leak into leases or the log.
    low, high = clock_window
    window = f"'{low}'::timestamptz - interval '5 seconds' AND '{high}'::timestamptz + interval '5 seconds'"
    report.add("violations", "timestamp outside the run (clock leak)", db.rows(
        f"SELECT 'event', seq::text FROM workflow_events WHERE at NOT BETWEEN {window} UNION ALL "
        f"SELECT 'attempt', task_id::text FROM task_attempts WHERE leased_at NOT BETWEEN {window} "
        f"OR finished_at NOT BETWEEN {window} OR last_heartbeat_at NOT BETWEEN {window}"))

    # What executors were told: an accepted completion is the task's one successful attempt.
    attempts = defaultdict(dict)
    for task_id, attempt, outcome in db.rows("SELECT task_id, attempt, outcome FROM task_attempts"):
        attempts[task_id][int(attempt)] = outcome
    accepted_completions = defaultdict(set)
    wrong = []
    for entry in ledger:
        if entry.get("event") == "ack" and entry.get("accepted") and entry.get("kind") == "completion":
            accepted_completions[entry["task"]].add(int(entry["token"]))
            if attempts.get(entry["task"], {}).get(int(entry["token"])) != "succeeded":
                wrong.append(entry)
    report.add("violations", "completion acknowledged but not the stored successful attempt", wrong)
    report.add("duplicated", "two completions of one task acknowledged",
               [(t, sorted(tokens)) for t, tokens in accepted_completions.items() if len(tokens) > 1])
    probes = [e for e in ledger if e.get("event") == "stale_probe"]
    report.add("violations", "stale report accepted", [p for p in probes if p["outcome"] == "accepted"])
    report.add("violations", "stale report answered with an unexpected status",
               [p for p in probes if p["outcome"].startswith("error:")])
    report.facts["stale_reports_refused"] = sum(p["outcome"] == "refused" for p in probes)
    report.facts["stale_reports_unanswered"] = sum(p["outcome"] == "unanswered" for p in probes)
    report.facts["completions_acknowledged"] = sum(len(v) for v in accepted_completions.values())
    report.facts["attempts"] = sum(len(v) for v in attempts.values())
    outcomes = defaultdict(int)
    for per_task in attempts.values():
        for outcome in per_task.values():
            outcomes[outcome] += 1
    report.facts["attempt_outcomes"] = dict(sorted(outcomes.items()))
    return report
