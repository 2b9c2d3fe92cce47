-- Accounts that may log in. The hash is an argon2id PHC string: it carries its own salt and
-- cost parameters, so hashes made with other parameters keep verifying.
CREATE TABLE users (
    id            UUID PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The catalog's fixed part. Stock is not here: the inventory owns it.
CREATE TABLE products (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0)
);
