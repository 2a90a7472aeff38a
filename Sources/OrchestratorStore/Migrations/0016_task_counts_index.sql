-- 0016: the unique index of a workflow's tasks by key also holds each task's state, so a
-- workflow's task counts (every workflow read: GetWorkflow, ListWorkflows, SubmitQuery's answer)
-- are counted from the index alone. Rationale: docs/SCHEMA.md, "Counting a workflow's tasks".
--
-- The counts read the state of every task of the workflow from the heap, and a task's updates
-- move its row to other pages (a finished 2,000-task workflow's rows lay on 394 pages): the
-- ListWorkflows query over 30 finished 2,000-task workflows (60,000 tasks, vacuumed) took 51-63 ms
-- in PostgreSQL. With the state in the index, pages the visibility map marks all-visible
-- (finished workflows, once vacuumed) are not read: 16-18 ms for the same page.
--
-- No write pays more than a few bytes: every statement that changes a task's state already
-- inserts a new entry into this index (state appears in partial index predicates, so those
-- updates are never HOT), and statements that leave the state alone are as HOT as before.
--
-- The constraint is rebuilt under ACCESS EXCLUSIVE on tasks (about 2 s per million tasks on the
-- development machine); docs/UPGRADING.md.
ALTER TABLE tasks
    DROP CONSTRAINT tasks_workflow_key_key,
    ADD CONSTRAINT tasks_workflow_key_key UNIQUE (workflow_id, key) INCLUDE (state);
