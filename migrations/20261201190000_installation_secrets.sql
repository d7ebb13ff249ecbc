-- Secrets of the installation, kept with its data: every process on this
-- database (servers, `shop users ...`) agrees on them without configuration,
-- and a restored backup keeps them. `account_ids` keys the derivation of a
-- new account's id from its username (HMAC-SHA256), so that nobody without
-- it can turn a username into an account id, or a list of usernames into
-- the ids of staff accounts.
CREATE TABLE installation_secrets (
    name text PRIMARY KEY,
    secret text NOT NULL CHECK (length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
