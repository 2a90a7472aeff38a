-- 0002: what the repositories (Sources/OrchestratorStore/Repositories) need beyond 0001.
-- Rationale: docs/SCHEMA.md, "Repositories".

-- Workflow ids are the application's time-ordered ids (`wf_0194f3…`, OrchestratorApp's
-- RandomIdentifierGenerator), not UUIDs: the columns that hold them become text. Task ids stay
-- uuid (the store generates them). Foreign keys are dropped and re-created around the change.
ALTER TABLE queries         DROP CONSTRAINT queries_workflow_id_fkey;
ALTER TABLE dag_versions    DROP CONSTRAINT dag_versions_workflow_id_fkey;
ALTER TABLE tasks           DROP CONSTRAINT tasks_workflow_id_fkey;
ALTER TABLE edges           DROP CONSTRAINT edges_workflow_id_fkey;
ALTER TABLE workflow_events DROP CONSTRAINT workflow_events_workflow_id_fkey;

ALTER TABLE workflows       ALTER COLUMN id TYPE text;
ALTER TABLE queries         ALTER COLUMN workflow_id TYPE text;
ALTER TABLE dag_versions    ALTER COLUMN workflow_id TYPE text;
ALTER TABLE tasks           ALTER COLUMN workflow_id TYPE text;
ALTER TABLE edges           ALTER COLUMN workflow_id TYPE text;
ALTER TABLE workflow_events ALTER COLUMN workflow_id TYPE text;

ALTER TABLE queries         ADD CONSTRAINT queries_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES workflows (id) ON DELETE CASCADE;
ALTER TABLE dag_versions    ADD CONSTRAINT dag_versions_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES workflows (id) ON DELETE CASCADE;
ALTER TABLE tasks           ADD CONSTRAINT tasks_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES workflows (id) ON DELETE CASCADE;
ALTER TABLE edges           ADD CONSTRAINT edges_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES workflows (id) ON DELETE CASCADE;
ALTER TABLE workflow_events ADD CONSTRAINT workflow_events_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES workflows (id) ON DELETE CASCADE;

-- "Is anything of this workflow still unfinished?" — asked by every completion and failure to
-- decide whether the workflow is done, and by cancellation / fail-fast to find what to cancel.
-- Partial, so it holds only live tasks and the probe stays an index lookup however large the
-- workflow's history.
CREATE INDEX tasks_workflow_unfinished_idx ON tasks (workflow_id)
    WHERE state IN ('pending', 'ready', 'retry_wait', 'leased', 'running');
