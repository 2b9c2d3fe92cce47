-- One payment per order: the UNIQUE order id is what makes a retried or concurrent charge
-- find the first one instead of creating a second.
CREATE TABLE payments (
    id           UUID PRIMARY KEY,
    order_id     UUID NOT NULL UNIQUE,     -- never two payments for one order
    user_id      UUID NOT NULL,
    amount_cents BIGINT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('PENDING','SUCCEEDED','DECLINED')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The fictitious provider's own ledger: what it really charged. Like a real provider it
-- honours idempotency keys (the order id), so a retried charge returns the first outcome.
CREATE TABLE provider_charges (
    id              BIGSERIAL PRIMARY KEY,
    idempotency_key UUID NOT NULL UNIQUE,
    amount_cents    BIGINT NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('SUCCEEDED','DECLINED')),
    charged_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
