-- The write path without a lock or a read per commit.
--
-- 1. Projectors are woken by the appending process after its commit (and by
--    a coalesced notification for other processes), not by a NOTIFY inside
--    every writing transaction: NOTIFY takes a database-wide lock at commit,
--    which made every writer queue behind every other.
DROP TRIGGER events_notify_projectors ON events;
DROP FUNCTION events_notify();

-- 2. The appending process computes each event's hash link from the
--    aggregate it has just loaded (whose last link it read with the events),
--    so an append needs no read of the predecessor. The trigger stays only
--    for rows inserted without a hash (by hand or by seeding tools), and then
--    links them as before.
DROP TRIGGER events_hash_chain ON events;
CREATE TRIGGER events_hash_chain
    BEFORE INSERT ON events
    FOR EACH ROW WHEN (NEW.hash IS NULL) EXECUTE FUNCTION events_chain();

-- 3. Snapshots: one per aggregate, a cache of its state after `last_sequence`
--    events, written with the events every so often and ignored when it
--    cannot be read or `version` (the state's shape) is not the code's.
DROP TABLE snapshots;
CREATE TABLE snapshots
(
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    version        integer     NOT NULL,
    last_sequence  bigint      NOT NULL CHECK (last_sequence > 0),
    payload        json        NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- 4. Keyed memory: facts an aggregate needs only by key ("did order X take
--    stock from this product?"), kept here instead of in its loaded state so
--    that state stays small. Written in the same statement as the events
--    that set them; a NULL value is a forgotten entry.
CREATE TABLE aggregate_memory
(
    aggregate_type text  NOT NULL,
    aggregate_id   text  NOT NULL,
    key            text  NOT NULL,
    value          jsonb,
    PRIMARY KEY (aggregate_type, aggregate_id, key)
);
