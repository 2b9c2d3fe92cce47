-- An order the saga could not complete is FAILED: its reservation is cancelled and its charge
-- refunded, and it stays in the table for an operator to see. `attempts` counts the
-- reconciler's passes, which stop at RECONCILE_MAX_ATTEMPTS.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('PENDING','CONFIRMED','DECLINED','CANCELLED','FAILED'));
ALTER TABLE orders ADD COLUMN attempts INT NOT NULL DEFAULT 0;
