-- 0009: less upkeep per task row. Rationale: docs/POSTGRES.md, "Vacuuming the queue", and
-- docs/SCHEMA.md, "Other indexes".
--
-- tasks_lease_owner_idx goes: every statement that names a lease's owner also names its task ids
-- (reports, heartbeats, give-backs and resumptions carry their lease tokens; a stream's end
-- releases the leases the server's registry lists), so the primary key serves them all and the
-- index was never scanned (pg_stat_user_indexes, every bench scenario), while each claim added an
-- entry to it and vacuum removed it again. It once also drew the planner into a nested loop over
-- it (DispatchSQL.completeHeld).
DROP INDEX tasks_lease_owner_idx;

-- No statistics for task columns no query filters on. ANALYZE sorts a sample of every column,
-- the payloads and JSON documents included, although no query filters, joins or groups on them;
-- with the early analyze of 0008 it runs every few seconds of a busy queue, at 600 ms for a
-- 40,000-task table. Without statistics for the columns below it takes half of that. The planner
-- keeps what it uses: state, ids, priorities, rank, capabilities, lease, retry and ready times,
-- finished_at.
ALTER TABLE tasks
    ALTER COLUMN input      SET STATISTICS 0,
    ALTER COLUMN result     SET STATISTICS 0,
    ALTER COLUMN metadata   SET STATISTICS 0,
    ALTER COLUMN last_error SET STATISTICS 0,
    ALTER COLUMN created_at SET STATISTICS 0,
    ALTER COLUMN updated_at SET STATISTICS 0,
    ALTER COLUMN started_at SET STATISTICS 0;
