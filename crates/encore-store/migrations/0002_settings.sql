-- encore's job store, schema 2: settings every worker shares (e.g. the secret that signs
-- callback URLs, made by the first `encore serve` and read by every later one).
CREATE TABLE settings (
    name TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

-- Workers follow the callbacks every worker receives, to wake the steps they run.
CREATE INDEX callbacks_by_time ON callbacks (received_at);
