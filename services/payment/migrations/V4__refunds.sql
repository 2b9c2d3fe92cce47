-- A charge whose order could not be completed is refunded: the payment says REFUNDED, and the
-- provider's ledger keeps the charge with the time it was given back (a refund, like a charge,
-- happens once per idempotency key).
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('PENDING','SUCCEEDED','DECLINED','REFUNDED'));
ALTER TABLE provider_charges ADD COLUMN refunded_at TIMESTAMPTZ;
