//! The one integration test binary: the real `bshare` binary against real services.

mod support;

mod api;
