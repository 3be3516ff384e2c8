//! bshare: self-hosted sharing of OpenCode sessions.
//!
//! The library holds all behaviour; `src/bin/bshare` only parses arguments and dispatches.
//! See `ARCHITECTURE.md` for the codemap and the invariants.

pub mod client;
pub mod crypto;
pub mod desktop;
pub mod listing;
pub mod model;
pub mod opencode;
pub mod registry;
pub mod sharing;
