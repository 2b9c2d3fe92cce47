-- The W3C traceparent of the span that appended the event, when that span was recorded
-- (docs/tracing.md): the relay publishes the event with it, so a consumer's spans join the
-- trace. NULL with tracing off.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
