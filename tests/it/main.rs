//! The one integration test binary.

mod tui_tmux;
