-- The simulated gateway judges a card's check digit and expiry when it is
-- charged: a tokenized card may now be one that charging refuses.
ALTER TABLE gateway_cards DROP CONSTRAINT gateway_cards_behaviour_check;
ALTER TABLE gateway_cards ADD CONSTRAINT gateway_cards_behaviour_check
    CHECK (behaviour IN ('approve', 'decline', 'insufficient_funds', 'incorrect_number', 'expired_card'));
