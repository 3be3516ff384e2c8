//! Installing the OpenCode plugin (`bshare plugin install`): the two embedded files from
//! `plugin/bundle/` go where OpenCode loads them, and the TUI half is listed in `tui.json`.
//!
//! OpenCode (checked on 1.18.33) loads server plugins from every `*.{ts,js}` in a config
//! directory's `plugin/` or `plugins/` folder, but TUI plugins only from the `plugin` list of
//! `tui.json`, and a module may be one or the other, not both. So the server plugin goes to
//! `plugins/bshare.js`, the TUI plugin to `bshare/tui.js` (outside `plugins/`, where the server
//! loader would reject it), and `./bshare/tui.js` is added to `tui.json` next to them.
//!
//! Files are only replaced when they are ours (they start with [`MARKER`]) or with `force`;
//! `tui.json` is edited textually so the user's formatting and comments survive, and left for
//! the user to edit when that cannot be done safely.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The server plugin bundle (events, re-sync, agent tools).
pub const SERVER_PLUGIN_JS: &str = include_str!("../../plugin/bundle/bshare.js");
/// The TUI plugin bundle (slash commands).
pub const TUI_PLUGIN_JS: &str = include_str!("../../plugin/bundle/bshare-tui.js");
/// First characters of every file the plugin build writes.
pub const MARKER: &str = "// bshare-opencode-plugin";
/// How `tui.json` names the TUI plugin, relative to the directory of `tui.json`.
pub const TUI_SPEC: &str = "./bshare/tui.js";

#[derive(Debug, thiserror::Error)]
pub enum PluginInstallError {
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "{path} exists and is not a bshare plugin file; move it away or run again with --force to overwrite it"
    )]
    NotOurs { path: PathBuf },
    #[error("cannot find OpenCode's config directory: neither XDG_CONFIG_HOME nor HOME is set")]
    NoHome,
}

/// Where to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The user's OpenCode config directory (`$XDG_CONFIG_HOME/opencode`, `~/.config/opencode`).
    Global(PathBuf),
    /// A project: `<root>/.opencode/`.
    Project(PathBuf),
}

impl Target {
    /// The global target from the environment, the way OpenCode finds its config directory.
    pub fn global_from_env() -> Result<Self, PluginInstallError> {
        let base = crate::config::xdg_dir("XDG_CONFIG_HOME", ".config")
            .ok_or(PluginInstallError::NoHome)?;
        Ok(Self::Global(base.join("opencode")))
    }

    /// The directory OpenCode reads: the config directory itself, or `<root>/.opencode`.
    pub fn config_dir(&self) -> PathBuf {
        match self {
            Self::Global(dir) => dir.clone(),
            Self::Project(root) => root.join(".opencode"),
        }
    }
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Created(PathBuf),
    Updated(PathBuf),
    Unchanged(PathBuf),
    /// `tui.json` got the plugin entry.
    Listed(PathBuf),
    /// `tui.json` already had it.
    AlreadyListed(PathBuf),
    /// `tui.json` could not be edited safely; the user has to add the entry.
    ListByHand(PathBuf),
}

/// Everything `install` did, printable for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub server_plugin: Step,
    pub tui_plugin: Step,
    pub tui_config: Step,
}

impl Report {
    /// Whether the run changed anything on disk.
    pub fn changed(&self) -> bool {
        [&self.server_plugin, &self.tui_plugin, &self.tui_config]
            .iter()
            .any(|s| matches!(s, Step::Created(_) | Step::Updated(_) | Step::Listed(_)))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = |f: &mut fmt::Formatter<'_>, what: &str, step: &Step| match step {
            Step::Created(p) => writeln!(f, "installed the {what}: {}", p.display()),
            Step::Updated(p) => writeln!(f, "updated the {what}: {}", p.display()),
            Step::Unchanged(p) => writeln!(f, "the {what} is up to date: {}", p.display()),
            _ => Ok(()),
        };
        file(f, "server plugin", &self.server_plugin)?;
        file(f, "TUI plugin", &self.tui_plugin)?;
        match &self.tui_config {
            Step::Listed(p) => writeln!(
                f,
                "added \"{TUI_SPEC}\" to the plugin list in {}",
                p.display()
            )?,
            Step::AlreadyListed(p) => writeln!(f, "{} already lists \"{TUI_SPEC}\"", p.display())?,
            Step::ListByHand(p) => writeln!(
                f,
                "could not edit {} safely: add \"{TUI_SPEC}\" to its \"plugin\" list yourself for the /bshare-share and /bshare-unshare commands",
                p.display()
            )?,
            _ => {}
        }
        if self.changed() {
            writeln!(
                f,
                "Restart OpenCode to load it. It talks to $BETTER_SHARE_BASE_URL (default http://127.0.0.1:8080)."
            )?;
        }
        Ok(())
    }
}

/// Installs both plugin files and lists the TUI one in `tui.json`. Idempotent.
pub fn install(target: &Target, force: bool) -> Result<Report, PluginInstallError> {
    let dir = target.config_dir();
    let server_path = plugin_dir(&dir).join("bshare.js");
    let tui_path = dir.join("bshare").join("tui.js");
    // Both files are checked before either is written, so a refusal changes nothing.
    if !force {
        for path in [&server_path, &tui_path] {
            check_ours(path)?;
        }
    }
    let server_plugin = write_file(&server_path, SERVER_PLUGIN_JS)?;
    let tui_plugin = write_file(&tui_path, TUI_PLUGIN_JS)?;
    let tui_config = list_in_tui_config(&dir)?;
    Ok(Report {
        server_plugin,
        tui_plugin,
        tui_config,
    })
}

/// `plugins/` unless the user already has a `plugin/` folder and no `plugins/`
/// (OpenCode reads both names).
fn plugin_dir(config_dir: &Path) -> PathBuf {
    let singular = config_dir.join("plugin");
    let plural = config_dir.join("plugins");
    if singular.is_dir() && !plural.is_dir() {
        singular
    } else {
        plural
    }
}

fn check_ours(path: &Path) -> Result<(), PluginInstallError> {
    match fs::read(path) {
        Ok(bytes) if bytes.starts_with(MARKER.as_bytes()) => Ok(()),
        Ok(_) => Err(PluginInstallError::NotOurs {
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(PluginInstallError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

fn write_file(path: &Path, content: &str) -> Result<Step, PluginInstallError> {
    let existing = match fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(PluginInstallError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            });
        }
    };
    if existing.as_deref() == Some(content.as_bytes()) {
        return Ok(Step::Unchanged(path.to_owned()));
    }
    write_replacing(path, content)?;
    Ok(match existing {
        Some(_) => Step::Updated(path.to_owned()),
        None => Step::Created(path.to_owned()),
    })
}

/// Writes through a temp file and a rename, so OpenCode starting meanwhile never loads half a file.
fn write_replacing(path: &Path, content: &str) -> Result<(), PluginInstallError> {
    let io_err = |action, source| PluginInstallError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| PluginInstallError::Io {
            action: "create directory",
            path: parent.to_owned(),
            source: e,
        })?;
    }
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    fs::write(&tmp, content).map_err(|e| io_err("write", e))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("replace", e)
    })
}

/// Adds [`TUI_SPEC`] to `tui.json` (or `tui.jsonc`) in `config_dir`, creating the file if needed.
fn list_in_tui_config(config_dir: &Path) -> Result<Step, PluginInstallError> {
    let jsonc = config_dir.join("tui.jsonc");
    let path = if jsonc.is_file() && !config_dir.join("tui.json").is_file() {
        jsonc
    } else {
        config_dir.join("tui.json")
    };
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let fresh = format!(
                "{{\n  \"$schema\": \"https://opencode.ai/tui.json\",\n  \"plugin\": [\"{TUI_SPEC}\"]\n}}\n"
            );
            write_replacing(&path, &fresh)?;
            return Ok(Step::Listed(path));
        }
        Err(source) => {
            return Err(PluginInstallError::Io {
                action: "read",
                path,
                source,
            });
        }
    };
    match add_plugin_entry(&text) {
        Edit::Already => Ok(Step::AlreadyListed(path)),
        Edit::Changed(new_text) => {
            write_replacing(&path, &new_text)?;
            Ok(Step::Listed(path))
        }
        Edit::Impossible => Ok(Step::ListByHand(path)),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Edit {
    Already,
    Changed(String),
    Impossible,
}

/// Inserts the spec into the top-level `plugin` array of a `tui.json` text, touching nothing else.
/// Any text that is not plain JSON (comments, trailing commas) or an edit whose result does not
/// parse back to the expected list is refused rather than guessed at.
fn add_plugin_entry(text: &str) -> Edit {
    if text.contains(&format!("\"{TUI_SPEC}\"")) {
        return Edit::Already;
    }
    let Ok(serde_json::Value::Object(root)) = serde_json::from_str::<serde_json::Value>(text)
    else {
        return Edit::Impossible;
    };
    let quoted = format!("\"{TUI_SPEC}\"");
    let candidate = match root.get("plugin") {
        None => {
            let Some(open) = text.find('{') else {
                return Edit::Impossible;
            };
            let separator = if root.is_empty() { "" } else { "," };
            format!(
                "{}\n  \"plugin\": [{quoted}]{separator}{}",
                &text[..=open],
                &text[open + 1..]
            )
        }
        Some(serde_json::Value::Array(list)) => {
            let mut found = text.match_indices("\"plugin\"");
            let (Some((at, _)), None) = (found.next(), found.next()) else {
                return Edit::Impossible;
            };
            let rest = &text[at + "\"plugin\"".len()..];
            let trimmed = rest.trim_start();
            let Some(after_colon) = trimmed.strip_prefix(':') else {
                return Edit::Impossible;
            };
            let after_colon_trimmed = after_colon.trim_start();
            if !after_colon_trimmed.starts_with('[') {
                return Edit::Impossible;
            }
            let bracket = text.len() - after_colon_trimmed.len();
            let separator = if list.is_empty() { "" } else { ", " };
            format!(
                "{}{quoted}{separator}{}",
                &text[..=bracket],
                &text[bracket + 1..]
            )
        }
        Some(_) => return Edit::Impossible,
    };
    // The edit must leave every other setting as it was and add exactly our entry in front.
    let Ok(serde_json::Value::Object(mut after)) =
        serde_json::from_str::<serde_json::Value>(&candidate)
    else {
        return Edit::Impossible;
    };
    let Some(serde_json::Value::Array(mut plugins)) = after.remove("plugin") else {
        return Edit::Impossible;
    };
    let mut before = root;
    let old_plugins = match before.remove("plugin") {
        Some(serde_json::Value::Array(list)) => list,
        _ => Vec::new(),
    };
    if plugins.is_empty() || plugins.remove(0) != serde_json::Value::String(TUI_SPEC.to_owned()) {
        return Edit::Impossible;
    }
    if plugins != old_plugins || after != before {
        return Edit::Impossible;
    }
    Edit::Changed(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn embedded_files_are_the_built_bundles() {
        assert!(SERVER_PLUGIN_JS.starts_with(MARKER));
        assert!(TUI_PLUGIN_JS.starts_with(MARKER));
        assert!(SERVER_PLUGIN_JS.contains("export {\n  BsharePlugin\n};"));
        assert!(TUI_PLUGIN_JS.contains("as default\n};"));
    }

    #[test]
    fn global_install_writes_both_files_and_tui_json() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".config/opencode");
        let report = install(&Target::Global(dir.clone()), false).unwrap();
        assert_eq!(
            report.server_plugin,
            Step::Created(dir.join("plugins/bshare.js"))
        );
        assert_eq!(report.tui_plugin, Step::Created(dir.join("bshare/tui.js")));
        assert_eq!(report.tui_config, Step::Listed(dir.join("tui.json")));
        assert_eq!(read(&dir.join("plugins/bshare.js")), SERVER_PLUGIN_JS);
        assert_eq!(read(&dir.join("bshare/tui.js")), TUI_PLUGIN_JS);
        let config: serde_json::Value = serde_json::from_str(&read(&dir.join("tui.json"))).unwrap();
        assert_eq!(config["plugin"], serde_json::json!([TUI_SPEC]));
    }

    #[test]
    fn second_run_changes_nothing() {
        let home = tempfile::tempdir().unwrap();
        let target = Target::Global(home.path().join("opencode"));
        install(&target, false).unwrap();
        let again = install(&target, false).unwrap();
        assert!(matches!(again.server_plugin, Step::Unchanged(_)));
        assert!(matches!(again.tui_plugin, Step::Unchanged(_)));
        assert!(matches!(again.tui_config, Step::AlreadyListed(_)));
        assert!(!again.changed());
    }

    #[test]
    fn project_install_goes_to_dot_opencode() {
        let root = tempfile::tempdir().unwrap();
        let report = install(&Target::Project(root.path().to_owned()), false).unwrap();
        assert_eq!(
            report.server_plugin,
            Step::Created(root.path().join(".opencode/plugins/bshare.js"))
        );
        assert_eq!(
            report.tui_config,
            Step::Listed(root.path().join(".opencode/tui.json"))
        );
    }

    #[test]
    fn an_existing_singular_plugin_folder_is_used() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("plugin")).unwrap();
        let report = install(&Target::Global(dir.path().to_owned()), false).unwrap();
        assert_eq!(
            report.server_plugin,
            Step::Created(dir.path().join("plugin/bshare.js"))
        );
    }

    #[test]
    fn a_foreign_file_is_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::Global(dir.path().to_owned());
        let path = dir.path().join("plugins/bshare.js");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "export const Mine = async () => ({})\n").unwrap();
        let err = install(&target, false).unwrap_err();
        assert!(matches!(err, PluginInstallError::NotOurs { .. }));
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(read(&path), "export const Mine = async () => ({})\n");
        // Nothing else was written either.
        assert!(!dir.path().join("bshare/tui.js").exists());
        assert!(!dir.path().join("tui.json").exists());

        let report = install(&target, true).unwrap();
        assert_eq!(report.server_plugin, Step::Updated(path.clone()));
        assert_eq!(read(&path), SERVER_PLUGIN_JS);
    }

    #[test]
    fn an_older_copy_of_ours_is_updated_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugins/bshare.js");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, format!("{MARKER} 0.0.1 (server plugin)\nold\n")).unwrap();
        let report = install(&Target::Global(dir.path().to_owned()), false).unwrap();
        assert_eq!(report.server_plugin, Step::Updated(path.clone()));
        assert_eq!(read(&path), SERVER_PLUGIN_JS);
    }

    #[test]
    fn tui_json_edits_keep_the_rest_of_the_file() {
        let with_list = "{\n  \"theme\": \"tokyonight\",\n  \"plugin\": [\"@acme/x\"]\n}\n";
        assert_eq!(
            add_plugin_entry(with_list),
            Edit::Changed(
                "{\n  \"theme\": \"tokyonight\",\n  \"plugin\": [\"./bshare/tui.js\", \"@acme/x\"]\n}\n"
                    .to_owned()
            )
        );
        let empty_list = "{\"plugin\": []}";
        assert_eq!(
            add_plugin_entry(empty_list),
            Edit::Changed("{\"plugin\": [\"./bshare/tui.js\"]}".to_owned())
        );
        let no_list = "{\n  \"theme\": \"x\"\n}\n";
        assert_eq!(
            add_plugin_entry(no_list),
            Edit::Changed(
                "{\n  \"plugin\": [\"./bshare/tui.js\"],\n  \"theme\": \"x\"\n}\n".to_owned()
            )
        );
        assert_eq!(
            add_plugin_entry("{}"),
            Edit::Changed("{\n  \"plugin\": [\"./bshare/tui.js\"]}".to_owned())
        );
    }

    #[test]
    fn tui_json_that_is_not_plain_json_is_left_to_the_user() {
        let commented = "{\n  // mine\n  \"plugin\": []\n}\n";
        assert_eq!(add_plugin_entry(commented), Edit::Impossible);
        // "plugin" also appearing inside a value would make a textual edit ambiguous.
        let ambiguous = "{\"theme\": \"plugin\", \"plugin\": []}";
        assert_eq!(add_plugin_entry(ambiguous), Edit::Impossible);
        assert_eq!(add_plugin_entry("{\"plugin\": \"x\"}"), Edit::Impossible);

        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("tui.json"), commented).unwrap();
        let report = install(&Target::Global(dir.path().to_owned()), false).unwrap();
        assert_eq!(
            report.tui_config,
            Step::ListByHand(dir.path().join("tui.json"))
        );
        assert_eq!(read(&dir.path().join("tui.json")), commented);
        assert!(report.to_string().contains("add \"./bshare/tui.js\""));
    }

    #[test]
    fn report_says_what_happened() {
        let report = Report {
            server_plugin: Step::Created(PathBuf::from("/c/plugins/bshare.js")),
            tui_plugin: Step::Unchanged(PathBuf::from("/c/bshare/tui.js")),
            tui_config: Step::Listed(PathBuf::from("/c/tui.json")),
        };
        assert_eq!(
            report.to_string(),
            "installed the server plugin: /c/plugins/bshare.js\n\
             the TUI plugin is up to date: /c/bshare/tui.js\n\
             added \"./bshare/tui.js\" to the plugin list in /c/tui.json\n\
             Restart OpenCode to load it. It talks to $BETTER_SHARE_BASE_URL (default http://127.0.0.1:8080).\n"
        );
    }
}
