-- The reconciler looks for PENDING orders untouched for a while, every second on every
-- replica. Without this index that was a scan of the whole table, whose cost grows with every
-- order ever placed; final orders never enter it, so it stays as small as the payments in
-- flight.
CREATE INDEX orders_pending_idx ON orders (updated_at) WHERE status = 'PENDING';
