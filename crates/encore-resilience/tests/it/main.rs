//! Integration tests of the retry loop, its retry budget and circuit breaker, on paused tokio
//! time.

mod admission;
mod breaker;
mod budget;
mod drift;
mod overload;
mod retry;
mod size;
mod support;
