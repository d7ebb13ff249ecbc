-- The audit seal: per aggregate, the last event the `audit_seal` projector
-- has sealed (its sequence and hash link). The hash chain alone cannot tell
-- a stream whose last event was removed from one that never had it (the
-- shorter chain still holds); `shop audit verify` checks that every sealed
-- stream still reaches its seal.
--
-- Written only by that projector, which follows the log after the appends
-- have committed (nothing is added to the write path), and never rebuilt from
-- the log: a rebuild would seal a tampered log as it stands.

CREATE TABLE sealed_streams
(
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    -- The last event sealed: its sequence and its hash link.
    last_sequence  bigint      NOT NULL CHECK (last_sequence > 0),
    last_hash      bytea       NOT NULL,
    sealed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- As protected as the events table: a seal only moves forward. Deleting,
-- truncating, moving a seal back or onto another stream is refused; as with
-- the events, whoever can disable the triggers can get past this.
CREATE FUNCTION sealed_streams_forward_only() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    IF TG_OP = 'UPDATE'
        AND NEW.aggregate_type = OLD.aggregate_type
        AND NEW.aggregate_id = OLD.aggregate_id
        AND NEW.last_sequence > OLD.last_sequence THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit seal only moves forward: % on sealed_streams is not allowed', TG_OP
        USING ERRCODE = 'raise_exception';
END;
$$;

CREATE TRIGGER sealed_streams_no_going_back
    BEFORE UPDATE OR DELETE ON sealed_streams
    FOR EACH ROW EXECUTE FUNCTION sealed_streams_forward_only();

CREATE TRIGGER sealed_streams_no_truncate
    BEFORE TRUNCATE ON sealed_streams
    FOR EACH STATEMENT EXECUTE FUNCTION sealed_streams_forward_only();
