-- 0009: no statistics for task columns no query filters on. Rationale: docs/POSTGRES.md,
-- "Vacuuming the queue".
--
-- ANALYZE sorts a sample of every column, the payloads and JSON documents included, although no
-- query filters, joins or groups on them; with the early analyze of 0008 it runs every few
-- seconds of a busy queue, at 600 ms for a 40,000-task table. Without statistics for the columns
-- below it takes half of that. The planner keeps what it uses: state, ids, priorities, rank,
-- capabilities, lease, retry and ready times, finished_at.
ALTER TABLE tasks
    ALTER COLUMN input      SET STATISTICS 0,
    ALTER COLUMN result     SET STATISTICS 0,
    ALTER COLUMN metadata   SET STATISTICS 0,
    ALTER COLUMN last_error SET STATISTICS 0,
    ALTER COLUMN created_at SET STATISTICS 0,
    ALTER COLUMN updated_at SET STATISTICS 0,
    ALTER COLUMN started_at SET STATISTICS 0;
