-- Projection rebuilds: a projector's new version is built into shadow tables
-- (schema `shop_rebuild_<name>`) from position zero while the live tables
-- keep answering queries, then swapped in atomically. One row per projector:
-- the rebuild in progress, or the last one.

CREATE TABLE projector_rebuilds
(
    name            text PRIMARY KEY,
    job_id          uuid        NOT NULL,
    -- The projector version being built.
    version         integer     NOT NULL,
    -- The last event applied to the shadow tables, in commit order.
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    -- Events read so far (applied or not of interest to the projector),
    -- and of those the ones applied.
    processed       bigint      NOT NULL DEFAULT 0,
    applied         bigint      NOT NULL DEFAULT 0,
    -- Events in the store when the rebuild started (grows while it runs).
    total           bigint      NOT NULL,
    -- building: in progress or interrupted (resumable); done: switched in;
    -- failed: halted on an event it cannot apply (resumable after a fix).
    state           text        NOT NULL
        CHECK (state IN ('building', 'done', 'failed')),
    error           text,
    -- Times it was resumed after an interruption.
    resumes         integer     NOT NULL DEFAULT 0,
    started_at      timestamptz NOT NULL DEFAULT now(),
    -- Start of the current run (the first, or the latest resume) and the
    -- events processed before it: the rate is measured over this run.
    run_started_at  timestamptz NOT NULL DEFAULT now(),
    run_processed_from bigint   NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
