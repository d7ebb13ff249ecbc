-- Personal data keys (crypto-shredding). Every personal field of an event
-- is stored encrypted with the data key of the customer it is about; the
-- data keys live here, each wrapped (encrypted) by the master key of the
-- installation, which is never stored in the database. Forgetting a
-- customer removes their wrapped key: the events stay as they are (and
-- their hash chain with them), but nobody can decrypt those fields again.
-- See docs/personal-data.md.
CREATE TABLE personal_data_keys
(
    -- Whose data: the customer id the events' `customer_id` names.
    subject      text PRIMARY KEY,
    -- nonce || AES-256-GCM(master key, data key); NULL once forgotten.
    wrapped_key  bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Set when the customer was forgotten; a forgotten subject never gets
    -- a new key (its personal fields are then stored erased).
    forgotten_at timestamptz,
    CHECK ((wrapped_key IS NULL) = (forgotten_at IS NOT NULL))
);

-- A value encrypted with the master key, so that a process given another
-- master key can tell at start-up instead of failing on every read.
CREATE TABLE personal_data_master
(
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    key_check bytea       NOT NULL,
    set_at    timestamptz NOT NULL DEFAULT now()
);

-- Which customer's key encrypted an event's personal fields (NULL: none),
-- so every reader finds the wrapped key in the same statement as the
-- event. Not covered by the hash chain: the encrypted fields name their
-- key themselves, and those are.
ALTER TABLE events ADD COLUMN personal_key text;
