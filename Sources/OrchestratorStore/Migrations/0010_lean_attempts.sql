-- 0010: no foreign-key check per attempt row. Rationale: docs/SCHEMA.md, "Loading big DAGs", and
-- docs/BENCHMARKS.md (heavy latency, 2026-11-27).
--
-- Every claim and every direct lease inserts an attempt row, and its key to tasks ran a check per
-- row (a lookup with a KEY SHARE lock): 0.5 ms of the 2.1 ms statement that stores a 50-task
-- workflow with its leases, on the path from submission to the first assignments. As with the
-- keys 0005 dropped, the rows are written only by the store, in the same statement or transaction
-- as the task they belong to, and removed with it: updateDag deletes the attempts of the tasks it
-- removes itself (tasks are deleted nowhere else). The workflow keys of dag_versions and queries
-- go for the same reason (one check per version and per workflow; workflows are never deleted).
ALTER TABLE task_attempts DROP CONSTRAINT task_attempts_task_id_fkey;
ALTER TABLE dag_versions  DROP CONSTRAINT dag_versions_workflow_id_fkey;
ALTER TABLE queries       DROP CONSTRAINT queries_workflow_id_fkey;
