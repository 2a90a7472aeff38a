-- 0013: the executors table goes. Rationale: docs/SCHEMA.md, "Tables".
--
-- 0001 created it for a fleet-wide record of executor identities and the streams they hold, and
-- nothing ever wrote or read it: executors live in each server's lease registry (GET /executors
-- on the admin port lists a server's streams), and which stream holds a lease is in the tasks and
-- task_attempts rows (lease_owner, resumed_by). Documented as holding a row per executor, it was
-- always empty (found by black-box testing). No server of any release uses it, so dropping it is
-- safe beside older servers.
DROP TABLE executors;
