-- 0006: event sequence numbers are handed out in commit order. Rationale: docs/SCHEMA.md, "Event order".
--
-- A sequence number is taken when a row is inserted, not when its transaction commits. Until now
-- readers hid events of transactions younger than the oldest running one (txid < snapshot xmin).
-- That is not enough: a transaction that got its id early (its first UPDATE) but appends its
-- event late takes a higher number than a younger transaction still open, commits first, and
-- passes the filter — a watcher then saw 105 before 101 and, resuming after 105, never saw 101.
-- It also made every reader wait for the oldest transaction anywhere in the cluster, in any database.
--
-- Now every statement that appends events first takes a transaction-level advisory lock, held to
-- commit, so at most one open transaction holds unpublished numbers and they are above every
-- committed one: what a reader sees is always a gap-free prefix (a rolled-back append leaves a
-- permanent gap, which is harmless). Writers of events serialise from their first append to
-- commit; the store appends events last in each transaction to keep that window short.
CREATE FUNCTION workflow_events_serialise_appends() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Keyed on the table's oid: per database, so two orchestrators on one cluster never wait on each other.
    PERFORM pg_advisory_xact_lock('workflow_events'::regclass::oid::integer, 0);
    RETURN NULL;
END
$$;

-- BEFORE ... FOR EACH STATEMENT runs before any row (and its identity value) is made; COPY fires it too.
CREATE TRIGGER workflow_events_serialise_appends
    BEFORE INSERT ON workflow_events
    FOR EACH STATEMENT EXECUTE FUNCTION workflow_events_serialise_appends();
