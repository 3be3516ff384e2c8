//! The local registry of shares (`$XDG_DATA_HOME/bshare/shares.json`, DESIGN.md §4).
//!
//! Written by the CLI and by the OpenCode plugin, read by the TUI. Writers serialize through a lock
//! file created with `O_EXCL` next to the registry and replace the file atomically (temp file, fsync,
//! rename), so two writers never lose each other's entries and a reader never sees half a file. The
//! plugin (`plugin/src/registry.ts`) implements the very same protocol; change both or neither.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How long a writer waits for the lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// A lock file older than this belongs to a writer that died; it is removed.
const LOCK_STALE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "{path} is not a valid share registry ({source}); fix or move it away, bshare will not overwrite it"
    )]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "another bshare or the OpenCode plugin has held the registry lock {path} for over {secs} s; try again, or remove the file if no writer is running",
        secs = LOCK_WAIT.as_secs()
    )]
    LockTimeout { path: PathBuf },
    #[error("cannot find the registry: neither XDG_DATA_HOME nor HOME is set")]
    NoHome,
}

/// One share the user made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub share_id: String,
    pub session_id: String,
    pub secret: String,
    pub url: String,
    pub server: String,
    #[serde(default)]
    pub title: String,
    /// Epoch milliseconds.
    #[serde(default)]
    pub created_at: i64,
    /// Epoch milliseconds of the last successful upload.
    #[serde(default)]
    pub updated_at: i64,
    /// Fields written by newer clients, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Entry {
    /// When the share expires (epoch ms), kept as the optional `expiresAt` field so that readers
    /// that do not know it keep it as it is.
    pub fn expires_at(&self) -> Option<i64> {
        self.extra.get("expiresAt").and_then(Value::as_i64)
    }

    pub fn set_expires_at(&mut self, at: Option<i64>) {
        match at {
            Some(at) => {
                self.extra.insert("expiresAt".into(), at.into());
            }
            None => {
                self.extra.remove("expiresAt");
            }
        }
    }
}

/// The whole registry file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Registry {
    pub version: u32,
    #[serde(default)]
    pub shares: Vec<Entry>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            version: 1,
            shares: Vec::new(),
            extra: Map::new(),
        }
    }
}

impl Registry {
    /// Insert or replace the entry with the same (server, shareId). Fields another writer added
    /// to the old entry, and this one does not set, are kept.
    pub fn upsert(&mut self, mut entry: Entry) {
        match self
            .shares
            .iter_mut()
            .find(|e| e.server == entry.server && e.share_id == entry.share_id)
        {
            Some(existing) => {
                for (key, value) in std::mem::take(&mut existing.extra) {
                    entry.extra.entry(key).or_insert(value);
                }
                *existing = entry;
            }
            None => self.shares.push(entry),
        }
    }

    /// Remove the entry with this (server, shareId); true when one was there.
    pub fn remove(&mut self, server: &str, share_id: &str) -> bool {
        let before = self.shares.len();
        self.shares
            .retain(|e| !(e.server == server && e.share_id == share_id));
        self.shares.len() != before
    }
}

/// The registry's default location: `$XDG_DATA_HOME/bshare/shares.json`.
pub fn default_path() -> Result<PathBuf, RegistryError> {
    let data_home =
        crate::config::xdg_dir("XDG_DATA_HOME", ".local/share").ok_or(RegistryError::NoHome)?;
    Ok(data_home.join("bshare").join("shares.json"))
}

/// Read the registry without taking the lock (writers replace it atomically).
/// A missing file is an empty registry.
pub fn load(path: &Path) -> Result<Registry, RegistryError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| RegistryError::Corrupt {
            path: path.to_owned(),
            source,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Registry::default()),
        Err(source) => Err(RegistryError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Read, change and write back the registry under the lock. `change` sees the current file, so
/// entries another writer added a moment ago are kept.
pub fn update<T>(path: &Path, change: impl FnOnce(&mut Registry) -> T) -> Result<T, RegistryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let lock_path = lock_path(path);
    let _lock = LockGuard::acquire(&lock_path)?;
    let mut registry = load(path)?;
    let out = change(&mut registry);
    write_atomically(path, &registry)?;
    Ok(out)
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    path.with_file_name(name)
}

fn create_private_dir(dir: &Path) -> Result<(), RegistryError> {
    let io_err = |source| RegistryError::Io {
        action: "create directory",
        path: dir.to_owned(),
        source,
    };
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_err)
}

fn open_private(path: &Path, create_new: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn write_atomically(path: &Path, registry: &Registry) -> Result<(), RegistryError> {
    let io_err = |action, source| RegistryError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    let mut bytes = serde_json::to_vec_pretty(registry)
        .map_err(|e| io_err("serialize", io::Error::other(e)))?;
    bytes.push(b'\n');
    let tmp = path.with_file_name(format!(
        "{}.tmp-{}-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        crate::crypto::random_hex(6)
    ));
    let result = (|| {
        let mut file = open_private(&tmp, true)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("write", source));
    }
    Ok(())
}

/// Holds `shares.json.lock`; removes it when dropped.
struct LockGuard {
    path: PathBuf,
}

impl LockGuard {
    fn acquire(path: &Path) -> Result<Self, RegistryError> {
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match open_private(path, true) {
                Ok(mut file) => {
                    // The pid is only for a person looking at a stuck lock.
                    let _ = writeln!(file, "{}", std::process::id());
                    return Ok(Self {
                        path: path.to_owned(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if is_stale(path) {
                        let _ = fs::remove_file(path);
                        continue;
                    }
                    if Instant::now() >= deadline {
                        return Err(RegistryError::LockTimeout {
                            path: path.to_owned(),
                        });
                    }
                    // Jitter keeps two waiting writers from retrying in lock step.
                    let jitter = u64::from(crate::crypto::random_bytes::<1>()[0] % 20);
                    std::thread::sleep(Duration::from_millis(10 + jitter));
                }
                Err(source) => {
                    return Err(RegistryError::Io {
                        action: "create lock file",
                        path: path.to_owned(),
                        source,
                    });
                }
            }
        }
    }
}

fn is_stale(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|age| age > LOCK_STALE)
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Entry {
        Entry {
            share_id: id.into(),
            session_id: format!("ses_{id}"),
            secret: "s".into(),
            url: format!("http://x/share/{id}"),
            server: "http://x".into(),
            title: "t".into(),
            created_at: 1,
            updated_at: 2,
            extra: Map::new(),
        }
    }

    #[test]
    fn missing_file_is_empty_and_update_creates_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/shares.json");
        assert!(load(&path).unwrap().shares.is_empty());
        update(&path, |r| r.upsert(entry("aaaaaaaa"))).unwrap();
        let r = load(&path).unwrap();
        assert_eq!(r.shares, vec![entry("aaaaaaaa")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(!lock_path(&path).exists(), "lock released");
    }

    #[test]
    fn unknown_fields_survive_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shares.json");
        fs::write(
            &path,
            r#"{"version":1,"future":true,"shares":[{"shareId":"aaaaaaaa","sessionId":"s","secret":"x","url":"u","server":"v","pinned":7}]}"#,
        )
        .unwrap();
        update(&path, |r| r.upsert(entry("bbbbbbbb"))).unwrap();
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["future"], true);
        assert_eq!(v["shares"][0]["pinned"], 7);
        assert_eq!(v["shares"][1]["shareId"], "bbbbbbbb");
    }

    #[test]
    fn corrupt_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shares.json");
        fs::write(&path, "{not json").unwrap();
        let err = update(&path, |r| r.upsert(entry("aaaaaaaa"))).unwrap_err();
        assert!(
            err.to_string().contains("not a valid share registry"),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"{not json");
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shares.json");
        std::thread::scope(|s| {
            for t in 0..4 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..25 {
                        update(path, |r| r.upsert(entry(&format!("t{t}-{i:06}")))).unwrap();
                    }
                });
            }
        });
        assert_eq!(load(&path).unwrap().shares.len(), 100);
    }

    #[test]
    fn stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shares.json");
        let lock = lock_path(&path);
        fs::write(&lock, "999999\n").unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        update(&path, |r| r.upsert(entry("aaaaaaaa"))).unwrap();
        assert_eq!(load(&path).unwrap().shares.len(), 1);
    }

    #[test]
    fn upsert_replaces_and_remove_removes() {
        let mut r = Registry::default();
        r.upsert(entry("aaaaaaaa"));
        let mut changed = entry("aaaaaaaa");
        changed.title = "new".into();
        r.upsert(changed);
        assert_eq!(r.shares.len(), 1);
        assert_eq!(r.shares[0].title, "new");
        let mut with_extra = entry("aaaaaaaa");
        with_extra.extra.insert("pinned".into(), true.into());
        r.upsert(with_extra);
        r.upsert(entry("aaaaaaaa"));
        assert_eq!(
            r.shares[0].extra["pinned"], true,
            "another writer's field survives"
        );
        assert!(r.remove("http://x", "aaaaaaaa"));
        assert!(!r.remove("http://x", "aaaaaaaa"));
    }
}
