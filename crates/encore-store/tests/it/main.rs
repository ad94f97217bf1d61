//! encore-store's integration tests: every store test body runs on a real SQLite file and on
//! a real PostgreSQL schema (`ENCORE_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`); without a reachable PostgreSQL those tests
//! fail and say so.

#[path = "../../testing/pg.rs"]
mod pg;
mod support;

mod claims;
mod jobs;
mod journal;
mod open;
mod process;
mod purge;
mod quota;
mod resolve;
mod stall;
