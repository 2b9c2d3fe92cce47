-- Stock per product. The row is the flash sale's hot spot: every hold, commit and release
-- updates it, so it is kept narrow and every change is one UPDATE with a guard.
CREATE TABLE stock (
    product_id     UUID PRIMARY KEY,
    initial        INTEGER NOT NULL CHECK (initial >= 0),
    available      INTEGER NOT NULL CHECK (available >= 0),
    reserved       INTEGER NOT NULL CHECK (reserved >= 0),
    sold           INTEGER NOT NULL CHECK (sold >= 0),
    -- units one user may hold or buy of this product; 0 means no limit
    per_user_limit INTEGER NOT NULL DEFAULT 0 CHECK (per_user_limit >= 0),
    CHECK (available + reserved + sold = initial)
);

-- One hold per (reservation, product). The row outlives its state changes, so a replayed
-- hold, commit or release finds what already happened and changes nothing.
CREATE TABLE holds (
    reservation_id UUID NOT NULL,
    product_id     UUID NOT NULL REFERENCES stock (product_id),
    user_id        UUID NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    state          TEXT NOT NULL CHECK (state IN ('HELD', 'SOLD', 'RELEASED')),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (reservation_id, product_id)
);

-- A release that arrives before (or instead of) its hold leaves a tombstone, so a late hold
-- for the same reservation cannot take stock that nobody would ever release.
CREATE TABLE released_reservations (
    reservation_id UUID PRIMARY KEY,
    released_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Units each user holds or has bought per product (HELD + SOLD), for the per-user limit.
CREATE TABLE user_units (
    user_id    UUID NOT NULL,
    product_id UUID NOT NULL,
    units      INTEGER NOT NULL CHECK (units >= 0),
    PRIMARY KEY (user_id, product_id)
);
