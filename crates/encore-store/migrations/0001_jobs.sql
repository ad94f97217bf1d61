-- encore's job store, schema 1. The same file runs on SQLite and PostgreSQL: portable types only
-- (BIGINT, TEXT), ids made by the application (UUIDv7 text), times in milliseconds since the Unix
-- epoch, JSON as TEXT, booleans as BIGINT 0/1. Enumerations (statuses, steps, states) are
-- checked by the application, not by CHECK constraints, so that a later schema can add a value
-- without rebuilding a table (SQLite cannot alter a constraint).

-- One pipeline run for one business input.
CREATE TABLE jobs (
    id TEXT NOT NULL PRIMARY KEY,
    status TEXT NOT NULL,
    origin TEXT NOT NULL,
    input TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    request_hash TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    result TEXT,
    error TEXT,
    attention TEXT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    -- The lease: who runs the job and until when; the fencing number grows with every claim
    -- and with every change made without a lease (cancel, resolve, requeue), so that a writer
    -- holding an older number changes nothing.
    lease_owner TEXT,
    lease_expires_at BIGINT,
    lease_fence BIGINT NOT NULL DEFAULT 0,
    -- The seq of the job's last event (events are numbered by their writer, under the job's row).
    event_seq BIGINT NOT NULL DEFAULT 0
);

-- The claim loop: the oldest claimable job of an origin.
CREATE INDEX jobs_by_claim_order ON jobs (origin, status, created_at, id);
-- Listing by status, newest first.
CREATE INDEX jobs_by_status ON jobs (status, id);

-- One row per (job, step): the pipeline's journal.
CREATE TABLE job_steps (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    external_id TEXT,
    correlation TEXT,
    result TEXT,
    error TEXT,
    started_at BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (job_id, name)
);

-- A job's timeline: statuses, step changes, retries, waits, callbacks.
CREATE TABLE job_events (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- Provider callbacks received for a job's step, until a worker has verified and used them.
CREATE TABLE callbacks (
    id TEXT NOT NULL PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id),
    step TEXT NOT NULL,
    external_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT,
    received_at BIGINT NOT NULL,
    verified_at BIGINT,
    consumed_at BIGINT,
    UNIQUE (job_id, step, external_id, kind)
);

CREATE INDEX callbacks_by_job ON callbacks (job_id, received_at);

-- Request quotas shared by every worker: a GCRA theoretical arrival time per quota name, in
-- microseconds since the Unix epoch.
CREATE TABLE quotas (
    name TEXT NOT NULL PRIMARY KEY,
    tat BIGINT NOT NULL
);
