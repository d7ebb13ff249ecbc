-- The notifications outbox. The "notifications" projector queues one message
-- per order stage in the same transaction as its checkpoint; the delivery
-- task sends pending messages and records the outcome. Not a read model:
-- never rebuilt (that would send every message again).

-- How to reach each account, from its registration.
CREATE TABLE notification_contacts
(
    customer_id uuid PRIMARY KEY,
    fullname    text NOT NULL,
    email       text NOT NULL,
    phone       text NOT NULL
);

CREATE TABLE notifications
(
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     uuid        NOT NULL,
    order_id        uuid,
    -- placed, paid, payment_failed, shipped, delivered, cancelled, expired,
    -- refunded.
    stage           text        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient       text        NOT NULL,
    subject         text        NOT NULL,
    body            text        NOT NULL,
    -- The event that caused it: one message per event at most.
    event_position  bigint      NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL,
    -- pending: to send (again at next_attempt_at); sent; failed: gave up.
    status          text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    last_error      text
);
CREATE INDEX notifications_customer ON notifications (customer_id, id DESC);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
