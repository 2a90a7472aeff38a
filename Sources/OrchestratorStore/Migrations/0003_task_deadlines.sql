-- 0003: start_to_close timeouts. Rationale: docs/SCHEMA.md, "Attempt deadlines".

-- When the current attempt must have finished: set by the claim to the claim instant plus the
-- task's start_to_close timeout (TaskSpec.timeoutSeconds), NULL for tasks without one. Meaningful
-- only while the task is leased or running; the next claim overwrites it, so nothing clears it.
ALTER TABLE tasks ADD COLUMN deadline_at timestamptz;

-- The reaper's timeout sweep: attempts past their deadline. Partial, so it holds only the leases
-- in flight that have a timeout, and an empty probe costs one index page.
CREATE INDEX tasks_deadline_idx ON tasks (deadline_at) WHERE state IN ('leased', 'running') AND deadline_at IS NOT NULL;
