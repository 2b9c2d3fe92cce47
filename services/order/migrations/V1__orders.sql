-- One order per reservation: the UNIQUE reservation id is what makes concurrent or repeated
-- payers of one reservation share one order (and so one charge, keyed by the order id).
CREATE TABLE orders (
    id              UUID PRIMARY KEY,
    reservation_id  UUID NOT NULL UNIQUE,  -- one order per reservation
    user_id         UUID NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('PENDING','CONFIRMED','DECLINED','CANCELLED')),
    total_cents     BIGINT NOT NULL,
    items           JSONB NOT NULL,        -- copy of the reservation's lines
    idempotency_key TEXT,                  -- first Idempotency-Key seen, for the record
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
