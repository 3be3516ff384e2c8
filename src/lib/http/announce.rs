//! Telling everyone that a share changed.
//!
//! Every other server sharing the database is told by the store itself, in the transaction of the
//! change (`mark_deleted`, `append_sync`, `with_share_locked` send Postgres `NOTIFY` on commit),
//! so a change is never committed unannounced. This server's part is [`changed`]: its cache drops
//! the share's views and its event hub looks at the share (live pages get `change` or `gone`).
//! Handlers call it after every attempt that may have changed a share, failed or not.

use super::context::App;

/// This server's part of announcing that share `id` may have changed.
pub fn changed(app: &App, id: &str) {
    app.cache.invalidate(id);
    app.events.changed(id);
}

/// A write of share `id`'s document reached the object store but its transaction did not commit
/// (the database went away): tell the other servers on a fresh connection, so none keeps
/// serving the old content. When that fails too, the database is unreachable, and the other
/// servers' listeners, cut off as well, drop their whole cache when they reconnect.
pub fn unconfirmed_write(app: &App, id: &str) {
    changed(app, id);
    let told = app
        .connector
        .connect()
        .and_then(|mut store| store.notify_change(id));
    if let Err(e) = told {
        eprintln!(
            "bshare: share {id}: its document changed but other servers could not be told: {}",
            e.chain()
        );
    }
}
