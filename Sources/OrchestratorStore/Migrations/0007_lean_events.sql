-- 0007: less work per event row. Rationale: docs/SCHEMA.md, "Events: audit trail, watch source, outbox".
--
-- Every event is appended under the event-order lock (0006), so each row's cost is paid while
-- every other appending transaction of the server waits: the server's throughput and its
-- ready-to-assignment latency both follow it. Two things per row bought nothing:
--
-- - the foreign key to workflows: a lookup and a KEY SHARE lock on the workflow row per event
--   (1,000 of them for a 1,000-task submission). Events are written only by the store, in the
--   transaction that creates the workflow or under its lock, and workflows are never deleted
--   (the same reasoning as 0005);
-- - workflow_events_unpublished_idx (seq) WHERE published_at IS NULL: meant for an outbox relay
--   that marks what it published. No such relay exists (watchers and relays tail by seq, which
--   the primary key serves), so it held every row. A relay that needs it can add it back.
ALTER TABLE workflow_events DROP CONSTRAINT workflow_events_workflow_id_fkey;
DROP INDEX workflow_events_unpublished_idx;
