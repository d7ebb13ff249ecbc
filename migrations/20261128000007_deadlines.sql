-- Time-based workflow steps (e.g. an unpaid order's payment timeout).
--
-- A workflow schedules a deadline in the same transaction as its checkpoint;
-- (kind, aggregate_id) is unique, so scheduling it again (an event seen twice)
-- changes nothing. Pollers take due rows with FOR UPDATE SKIP LOCKED, run
-- them and set done_at in the same transaction, so any number of processes
-- can poll and each deadline is run to completion once.
CREATE TABLE deadlines (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL,
    aggregate_id text NOT NULL,
    due_at timestamptz NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    done_at timestamptz,
    -- What running it came to: 'ok', or why the domain refused it.
    outcome text,
    UNIQUE (kind, aggregate_id)
);

CREATE INDEX deadlines_due ON deadlines (due_at) WHERE done_at IS NULL;
