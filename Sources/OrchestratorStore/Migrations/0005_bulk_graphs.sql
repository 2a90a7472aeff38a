-- 0005: store big DAGs without a foreign-key check per row. Rationale: docs/SCHEMA.md, "Loading big DAGs".
--
-- Every inserted edge ran three foreign-key checks (both tasks and the workflow) and every task
-- one (its workflow): about 700,000 single-row lookups, each also taking a KEY SHARE row lock,
-- for a 100,000-task DAG with 198,000 edges — most of the time of storing it. The rows these
-- keys protect are written only by the store, in the same transaction as (or under the workflow
-- lock of) the rows they point to, and never deleted apart from them: updateDag deletes a
-- workflow's edges itself together with the removed tasks, and workflows are never deleted.
-- task_attempts → tasks and the workflow keys of queries, dag_versions and workflow_events stay.
ALTER TABLE edges DROP CONSTRAINT edges_upstream_task_id_fkey,
                  DROP CONSTRAINT edges_downstream_task_id_fkey,
                  DROP CONSTRAINT edges_workflow_id_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_workflow_id_fkey;
