-- Auditors follow one request across aggregates by its correlation id.
CREATE INDEX events_correlation_id ON events ((metadata->>'correlation_id'));
