-- 0017: finished workflows by when they finished, for retention (`--retention`, docs/SCHEMA.md
-- "Retention"): the pruner walks the oldest finished workflows first, a few hundred at a time,
-- and without this index every pass would read every workflow.
--
-- One entry per workflow, written once when it finishes (state appears in the predicate of
-- workflows_active_idx already, so no update that was HOT stops being so). Built under a SHARE
-- lock on workflows (about 0.35 s per million workflows on the development machine): writes to
-- workflows wait that long; docs/UPGRADING.md.
CREATE INDEX workflows_finished_idx ON workflows (finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');
