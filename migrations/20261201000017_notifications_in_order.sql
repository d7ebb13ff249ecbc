-- Delivery sends one order's messages in the order they were queued: a
-- message waits while an earlier pending one of its order is being sent or
-- waits for a retry. This finds those earlier messages.
CREATE INDEX notifications_pending_order ON notifications (order_id, id) WHERE status = 'pending';
