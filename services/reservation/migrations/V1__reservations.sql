-- One row per reservation. The status moves forward only:
--   PENDING -> RESERVED | SOLD_OUT | LIMIT_REACHED | CANCELLED | EXPIRED
--   RESERVED -> CONFIRMED | CANCELLED | EXPIRED
-- Once an order is bound (order_id) the sweeper never expires the row: the payment saga of
-- that order decides between CONFIRMED and CANCELLED.
CREATE TABLE reservations (
    id              UUID PRIMARY KEY,
    user_id         UUID NOT NULL,
    cart_id         UUID NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('PENDING','RESERVED','SOLD_OUT',
                        'LIMIT_REACHED','CONFIRMED','EXPIRED','CANCELLED')),
    items           JSONB NOT NULL,        -- [{"product_id","quantity","price_cents"}]
    total_cents     BIGINT NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    order_id        UUID,                  -- bound when payment begins; the sweeper then leaves it alone
    release_pending BOOLEAN NOT NULL DEFAULT false,  -- stock still to be given back to inventory
    release_claimed_until TIMESTAMPTZ,     -- lease of the sweeper replica releasing it
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The expire pass scans only live, unbound rows in expiry order; final rows never enter
-- this index, so it stays as small as the number of reservations in flight.
CREATE INDEX reservations_expiring_idx ON reservations (expires_at)
    WHERE status IN ('PENDING', 'RESERVED') AND order_id IS NULL;

-- The release pass scans only rows whose stock is still to be given back.
CREATE INDEX reservations_release_pending_idx ON reservations (release_claimed_until)
    WHERE release_pending;
