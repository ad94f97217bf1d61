//! Integration tests of the retry loop, its retry budget and circuit breaker, on paused tokio
//! time.

mod breaker;
mod budget;
mod overload;
mod retry;
mod support;
