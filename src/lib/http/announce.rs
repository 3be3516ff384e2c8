//! Telling everyone that a share changed: this server's page cache drops its page, its event hub
//! looks at the share (live pages get `change` or `gone`), and every other server sharing the
//! database is told through the store (`NOTIFY` on PostgreSQL). Every handler that changes a
//! share's content or state calls `changed` after the change.

use super::context::Worker;
use crate::error::Result;

/// Announce that share `id` changed (content written, upload URL issued, deleted, expired).
pub fn changed(w: &mut Worker, id: &str) -> Result<()> {
    w.app.cache.invalidate(id);
    w.app.events.changed(id);
    w.store()?.notify_change(id)
}
