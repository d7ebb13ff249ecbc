-- Payments: the simulated gateway's own records, and the shop's record of
-- the gateway callbacks it has acted on.
--
-- The gateway_* tables stand in for the payment provider's side: a real
-- provider keeps them in its own systems. Card numbers and CVCs are stored
-- nowhere: a card is its token, brand and last four digits.
CREATE TABLE gateway_cards (
    token text PRIMARY KEY,
    customer_id uuid NOT NULL,
    brand text NOT NULL,
    last4 text NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
    -- What charging it does: 'approve', 'decline' or 'insufficient_funds'.
    behaviour text NOT NULL CHECK (behaviour IN ('approve', 'decline', 'insufficient_funds')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One charge per reference (the idempotency key), decided when it is
-- accepted; its outcome reaches the shop as a signed callback, delivered
-- (with retries) by the gateway's delivery task.
CREATE TABLE gateway_charges (
    id text PRIMARY KEY,
    reference text NOT NULL UNIQUE,
    token text NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    -- 'succeeded' or 'failed' (with failure_reason).
    outcome text NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
    failure_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    callback_attempts integer NOT NULL DEFAULT 0,
    callback_next_at timestamptz NOT NULL DEFAULT now(),
    callback_delivered_at timestamptz,
    callback_last_error text
);

CREATE INDEX gateway_charges_undelivered ON gateway_charges (callback_next_at)
    WHERE callback_delivered_at IS NULL;

-- Money given back, once per reference, never more than the charge.
CREATE TABLE gateway_refunds (
    id text PRIMARY KEY,
    reference text NOT NULL UNIQUE,
    charge_id text NOT NULL REFERENCES gateway_charges (id),
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The shop's side: every gateway callback acted on, by its event id, so a
-- replayed callback has no second effect.
CREATE TABLE payment_webhook_events (
    event_id text PRIMARY KEY,
    event_type text NOT NULL,
    reference text NOT NULL,
    outcome text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
