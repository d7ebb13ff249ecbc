-- The projector runtime: one checkpoint row per projector, and dead letters
-- for events a projector could not apply.

CREATE TABLE projector_checkpoints
(
    name            text PRIMARY KEY,
    version         integer     NOT NULL,
    -- The last event applied, in commit order.
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    -- running: follows the log; stopped: halted on a poison event;
    -- paused: halted by an operator.
    state           text        NOT NULL DEFAULT 'running'
        CHECK (state IN ('running', 'stopped', 'paused')),
    events_applied  bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projector_dead_letters
(
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projector       text        NOT NULL,
    global_position bigint      NOT NULL,
    transaction_id  xid8        NOT NULL,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL,
    event_type      text        NOT NULL,
    error           text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- NULL while open; 'retried' or 'skipped' once an operator acted.
    resolution      text CHECK (resolution IN ('retried', 'skipped')),
    resolved_at     timestamptz,
    UNIQUE (projector, global_position)
);

CREATE INDEX projector_dead_letters_open ON projector_dead_letters (projector) WHERE resolution IS NULL;
