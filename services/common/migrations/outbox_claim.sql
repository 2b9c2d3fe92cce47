-- The relay claims rows for a lease instead of holding a transaction open while it publishes:
-- a row is the relay's until `claimed_until`, and another replica's once that has passed.
ALTER TABLE outbox ADD COLUMN claimed_until TIMESTAMPTZ;
