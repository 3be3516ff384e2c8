//! bshare: self-hosted sharing of OpenCode sessions.
//!
//! The library holds all behaviour; `src/bin/bshare` only parses arguments and dispatches.
//! See `ARCHITECTURE.md` for the codemap and the invariants.

pub mod blob;
pub mod calendar;
pub mod client;
pub mod config;
pub mod crypto;
pub mod desktop;
pub mod error;
pub mod http;
pub mod listing;
pub mod model;
pub mod opencode;
pub mod plugin_install;
pub mod protocol;
pub mod redact;
pub mod registry;
pub mod render;
pub mod sharing;
pub mod store;
pub mod tui;
