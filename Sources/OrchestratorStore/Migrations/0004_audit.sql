-- 0004: the audit trail (ListEvents). Rationale: docs/SECURITY.md, "Audit trail".

-- The W3C trace id of the call that appended the event (the workflow's own trace id is in
-- trace_id). NULL, like actor, for what the server does on its own (lease expiry, the reaper).
ALTER TABLE workflow_events ADD COLUMN request_trace_id text;

-- ListEvents filtered by actor: one subject's changes in sequence order. Partial, so events the
-- server made on its own (no actor) cost this index nothing.
CREATE INDEX workflow_events_actor_seq_idx ON workflow_events ((actor ->> 'subject'), seq) WHERE actor IS NOT NULL;

-- ListEvents time windows: events are appended in (nearly) time order, so a BRIN index on `at`
-- narrows a window to a few block ranges at almost no cost to the append path.
CREATE INDEX workflow_events_at_brin_idx ON workflow_events USING brin (at);
