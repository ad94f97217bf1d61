-- encore's job store, schema 3: retention finds old finished jobs by status and last change
-- (`encore jobs purge`, `serve.retention`) without reading the whole table.
CREATE INDEX jobs_by_status_and_update ON jobs (status, updated_at);
