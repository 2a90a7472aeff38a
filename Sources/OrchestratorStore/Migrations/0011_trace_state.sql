-- 0011: the submitter's W3C tracestate, kept with the workflow's trace id. Rationale: docs/SCHEMA.md,
-- "Tables" (workflows), and docs/OBSERVABILITY.md.
--
-- Assignments carry a traceparent built from the workflow's trace id; vendors' tracing systems keep
-- their own state in tracestate, which a hop that drops it breaks. NULL: none was sent (or it was
-- invalid). A nullable column without default: adding it rewrites nothing.
ALTER TABLE workflows ADD COLUMN trace_state text;
