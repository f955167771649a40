-- 000011 the outbox's stamping stays one index probe per event however large the backlog.
--
-- Why: the hand-off stamps each event with `UPDATE ... WHERE organization_id = $1 AND id = $2 AND
-- stream_id IS NULL`. The unique index on stream_id also held the NULLs of unstamped events, and once
-- the statistics said they were rare (they are, but in a burst) the planner read them all through that
-- index for every event: a backlog of 50,000 events (one large transaction, or a listener down for a
-- while) took 12 s per 1,000 instead of 50 ms, and a hand-off could outlive its statement timeout
-- forever. Now no index covers unstamped rows by stream_id, so the primary key is the stamping's only
-- path; the backlog has its own small index, on dispatched_at (stamped in the same UPDATE), which that
-- statement's predicate does not imply and so cannot pick up. Keep it that way: the stamping's WHERE must not
-- mention dispatched_at, and no index may have `stream_id IS NULL` as its predicate.
-- Locks: builds two indexes on webhook_events (writes to it wait meanwhile; the table holds the
-- retention's events, days) and drops one.

CREATE UNIQUE INDEX webhook_events_stream_position ON webhook_events (stream_id) WHERE stream_id IS NOT NULL;
DROP INDEX webhook_events_stream_id;
ALTER INDEX webhook_events_stream_position RENAME TO webhook_events_stream_id;

-- The listener's backlog (unstamped events), for the metrics, health and the hand-off at start.
CREATE INDEX webhook_events_unstamped ON webhook_events (organization_id) WHERE dispatched_at IS NULL;
