//! Integration tests of the retry loop, on paused tokio time.

mod retry;
