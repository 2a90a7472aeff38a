-- 0008: vacuum the task queue as often as it churns. Rationale: docs/POSTGRES.md, "Vacuuming the queue".
--
-- Every claim and every completion leaves a dead version of a task row and, since both change
-- indexed columns, dead entries in its indexes; the claim walks tasks_claim_idx from its most
-- urgent end, exactly where the claimed (dead) entries of the last seconds pile up. With the
-- default thresholds (20 % of the table) a busy queue of a million tasks waits for 200,000 dead
-- rows before a vacuum, and every claim meanwhile steps over them. So: vacuum after a fixed number
-- of changes whatever the table's size, without the cost-based pauses, and analyze early so the
-- planner knows how big the ready queue is.
ALTER TABLE tasks SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_analyze_threshold = 1000
);
-- An attempt row is inserted at the claim and updated once at the end; leaving room on each page
-- lets that update stay on the page (HOT: no new primary-key entry), and it is vacuumed like tasks.
ALTER TABLE task_attempts SET (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0
);
