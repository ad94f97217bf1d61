//! Integration tests against the simulator: in memory on paused time for the long default
//! schedules, over loopback sockets at millisecond scale for connection-level faults.

mod billing;
mod calls;
mod faults;
mod observe;
mod overload;
mod providers;
mod sockets;
mod support;
mod timeouts;
