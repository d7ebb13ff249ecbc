-- Keyed memory for the events stored before it existed: the entries each of
-- these events sets or forgets, as `StoredAggregate::remembers` of its
-- aggregate says (domain/src/stored.rs lists the keys). Replayed in sequence
-- order per aggregate and key, the last event wins; a forgetting event leaves
-- a NULL value.
INSERT INTO aggregate_memory (aggregate_type, aggregate_id, key, value)
SELECT DISTINCT ON (aggregate_type, aggregate_id, key) aggregate_type, aggregate_id, key, value
  FROM (
    SELECT aggregate_type, aggregate_id, sequence,
           'committed:' || (payload -> 'HoldCommitted' ->> 'owner_id') AS key,
           (payload -> 'HoldCommitted' -> 'quantity')::text::jsonb AS value
      FROM events WHERE aggregate_type = 'InventoryItem' AND event_type = 'HoldCommitted'
    UNION ALL
    SELECT e.aggregate_type, e.aggregate_id, e.sequence,
           'committed:' || (c.value ->> 'owner_id'), (c.value -> 'quantity')::text::jsonb
      FROM events e, json_array_elements(e.payload -> 'HoldsCommitted' -> 'commits') AS c
     WHERE e.aggregate_type = 'InventoryItem' AND e.event_type = 'HoldsCommitted'
    UNION ALL
    SELECT aggregate_type, aggregate_id, sequence,
           'decremented:' || (payload -> 'StockDecremented' ->> 'order_id'),
           (payload -> 'StockDecremented' -> 'quantity')::text::jsonb
      FROM events WHERE aggregate_type = 'InventoryItem' AND event_type = 'StockDecremented'
    UNION ALL
    SELECT aggregate_type, aggregate_id, sequence,
           'returned:' || (payload -> 'OrderStockReturned' ->> 'order_id'),
           (payload -> 'OrderStockReturned' -> 'quantity')::text::jsonb
      FROM events WHERE aggregate_type = 'InventoryItem' AND event_type = 'OrderStockReturned'
    UNION ALL
    SELECT aggregate_type, aggregate_id, sequence,
           'invoice:' || (payload -> 'InvoiceNumberAllocated' ->> 'order_id'),
           (payload -> 'InvoiceNumberAllocated' -> 'number')::text::jsonb
      FROM events WHERE aggregate_type = 'InvoiceNumbering' AND event_type = 'InvoiceNumberAllocated'
    UNION ALL
    SELECT e.aggregate_type, e.aggregate_id, e.sequence,
           'invoice:' || o.order_id,
           to_jsonb((e.payload -> 'InvoiceNumbersAllocated' ->> 'first')::bigint + o.n - 1)
      FROM events e,
           json_array_elements_text(e.payload -> 'InvoiceNumbersAllocated' -> 'orders')
               WITH ORDINALITY AS o(order_id, n)
     WHERE e.aggregate_type = 'InvoiceNumbering' AND e.event_type = 'InvoiceNumbersAllocated'
    UNION ALL
    SELECT aggregate_type, aggregate_id, sequence,
           'redeemed:' || (payload -> 'CouponRedeemed' ->> 'order_id'), 'true'::jsonb
      FROM events WHERE aggregate_type = 'Coupon' AND event_type = 'CouponRedeemed'
    UNION ALL
    SELECT aggregate_type, aggregate_id, sequence,
           'redeemed:' || (payload -> 'CouponRedemptionReleased' ->> 'order_id'), NULL
      FROM events WHERE aggregate_type = 'Coupon' AND event_type = 'CouponRedemptionReleased'
    UNION ALL
    SELECT aggregate_type, aggregate_id, sequence,
           'reference:' || btrim(payload -> event_type ->> 'reference'), 'true'::jsonb
      FROM events WHERE aggregate_type = 'Wallet' AND event_type IN ('WalletCredited', 'WalletDebited')
  ) AS entries
 ORDER BY aggregate_type, aggregate_id, key, sequence DESC
ON CONFLICT (aggregate_type, aggregate_id, key) DO NOTHING;
