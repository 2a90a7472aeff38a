-- 0014: the ready queue indexed by capability set, and by tenant. Rationale: docs/SCHEMA.md,
-- "Capability matching" and "Tenants".
--
-- A claim walked tasks_claim_idx (the whole ready queue in dispatch order) and checked each
-- entry's required capabilities, and a tenant-scoped executor's tenants, on the way: tasks nobody
-- present can run (a pool of GPU executors offline, a capability nobody offers) and other tenants'
-- backlogs were stepped over by every claim, each time. Measured: behind 83,520 tasks of an absent
-- capability each claim read all of them, 41-47 ms instead of 0.4 ms, and with a backlog of 50,000
-- the ready-to-assignment p99 of 8 executors went from 10-17 ms to 76-294 ms; behind another
-- tenant's 44,544 queued tasks of the same capability, a tenant-scoped claim took 26-28 ms
-- (docs/BENCHMARKS.md, "A backlog nobody can take").
--
-- tasks_ready_by_capabilities_idx orders the queue by capability set, then in dispatch order: a
-- claim for every tenant lists the sets present by skipping through its first column and, when a
-- set it cannot run is queued, walks only the sets it can run and merges them. tasks_claim_idx
-- stays: when every queued set is runnable, one walk of it reads nothing in vain.
--
-- tasks.tenant copies the workflow's tenant onto its tasks (written at insert; '' = not known on
-- the row: rows a 0.3.0 server inserts, and finished tasks, which are not backfilled), and
-- tasks_ready_by_tenant_idx orders the queue by tenant and set: a tenant-scoped claim walks only
-- its tenants' runnable sets, plus the '' rows, checked against the workflow as before. ADD COLUMN
-- with a constant default rewrites nothing; the backfill rewrites the unfinished tasks.
ALTER TABLE tasks ADD COLUMN tenant text NOT NULL DEFAULT '';
UPDATE tasks t SET tenant = w.tenant
  FROM workflows w
 WHERE w.id = t.workflow_id AND t.state IN ('pending', 'ready', 'leased', 'running', 'retry_wait');
CREATE INDEX tasks_ready_by_capabilities_idx ON tasks (required_capabilities, dispatch_priority DESC, rank DESC, ready_at, id)
    WHERE state = 'ready';
CREATE INDEX tasks_ready_by_tenant_idx ON tasks (tenant, required_capabilities, dispatch_priority DESC, rank DESC, ready_at, id)
    WHERE state = 'ready';
