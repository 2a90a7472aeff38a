-- 0014: the ready queue indexed by capability set as well. Rationale: docs/SCHEMA.md, "Capability matching".
--
-- A claim walked tasks_claim_idx (the whole ready queue in dispatch order) and checked each
-- entry's required capabilities on the way: tasks nobody present can run (a pool of GPU
-- executors offline, a capability nobody offers) were stepped over by every claim of every other
-- executor, each time. Measured: behind 83,520 such tasks each claim read all of them, 41-47 ms
-- instead of 0.4 ms, and with a backlog of 50,000 the ready-to-assignment p99 of 8 executors
-- went from 10-17 ms to 76-294 ms (docs/BENCHMARKS.md, "A backlog nobody can take").
--
-- This index orders the queue by capability set first, then in dispatch order. The claim
-- (DispatchSQL.claim) lists the sets present by skipping through its first column; when a set
-- it cannot run is queued, it walks only the sets it can run, each in dispatch order, and merges
-- them. tasks_claim_idx stays: when every queued set is runnable, one walk of it reads nothing
-- in vain, where walking each set would read up to a batch's worth of rows per set.
CREATE INDEX tasks_ready_by_capabilities_idx ON tasks (required_capabilities, dispatch_priority DESC, rank DESC, ready_at, id)
    WHERE state = 'ready';
