//! Integration tests for encore-sim: one binary, one module per concern.

mod callbacks;
mod creatomate;
mod docs;
mod faults;
mod ledger;
mod openai;
mod scenarios;
mod suno;
mod support;
