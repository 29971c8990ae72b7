//! Traffic that leaves the sandbox (`--network=sandbox`): the Sentry's
//! side of the egress broker (DESIGN.md, Network). The broker, a process
//! runsc-lite starts, owns every host socket; the Sentry asks it for
//! connections over a unix socket and moves bytes on the descriptors it
//! hands back.
//!
//! - [`proto`]: the wire format between the two, and eth0's addresses.

pub mod proto;
