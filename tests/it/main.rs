//! The one integration test binary: the real `bshare` binary against real services.

mod support;

mod api;
mod bounds;
mod browser;
mod cache;
mod cli;
mod edge;
mod fake_model;
mod html;
mod journal;
mod live;
mod opencode_e2e;
mod outages;
mod plugin_install;
mod redaction;
mod registry;
mod tui_tmux;
