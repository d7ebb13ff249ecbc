-- Integration events: facts from other services that could not be applied.
--
-- A message on an inbound subject (`shop.inbound.carrier.delivered`, ...)
-- that cannot be read, or names an order or product the shop does not know,
-- is kept here after a few deliveries and acknowledged, so the messages after
-- it go on.
CREATE TABLE inbound_dead_letters
(
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject         text        NOT NULL,
    -- JetStream's sequence of the message in the inbound stream.
    stream_sequence bigint      NOT NULL,
    -- The message's `Nats-Msg-Id`, when it had one.
    message_id      text,
    deliveries      bigint      NOT NULL,
    -- The message as received (not necessarily UTF-8 or JSON).
    payload         bytea       NOT NULL,
    error           text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subject, stream_sequence)
);

-- The carrier names a delivered parcel by its tracking number: finding the
-- order that shipped with it must not read every event.
CREATE INDEX events_order_tracking_number
    ON events ((payload -> 'OrderShipped' ->> 'tracking_number'))
    WHERE event_type = 'OrderShipped';
