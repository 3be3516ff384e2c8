//! `bshare plugin install` run as a user would: a throwaway HOME, the real binary.

use std::path::Path;
use std::process::{Command, Output};

use bshare::plugin_install::{SERVER_PLUGIN_JS, TUI_PLUGIN_JS};

fn bshare(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bshare"))
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("run bshare")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn installs_into_the_users_opencode_config_and_says_where() {
    let home = tempfile::tempdir().unwrap();
    let out = bshare(home.path(), home.path(), &["plugin", "install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = home.path().join(".config/opencode");
    let server = config.join("plugins/bshare.js");
    let tui = config.join("bshare/tui.js");
    assert_eq!(std::fs::read_to_string(&server).unwrap(), SERVER_PLUGIN_JS);
    assert_eq!(std::fs::read_to_string(&tui).unwrap(), TUI_PLUGIN_JS);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "installed the server plugin: {}",
            server.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("installed the TUI plugin: {}", tui.display())),
        "{text}"
    );
    assert!(text.contains("tui.json"), "{text}");
    assert!(text.contains("Restart OpenCode"), "{text}");
}

#[test]
fn a_second_run_reports_everything_up_to_date() {
    let home = tempfile::tempdir().unwrap();
    assert!(
        bshare(home.path(), home.path(), &["plugin", "install"])
            .status
            .success()
    );
    let out = bshare(home.path(), home.path(), &["plugin", "install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("the server plugin is up to date"), "{text}");
    assert!(text.contains("the TUI plugin is up to date"), "{text}");
    assert!(text.contains("already lists"), "{text}");
    assert!(!text.contains("Restart"), "{text}");
}

#[test]
fn refuses_to_overwrite_a_foreign_file_without_force() {
    let home = tempfile::tempdir().unwrap();
    let server = home.path().join(".config/opencode/plugins/bshare.js");
    std::fs::create_dir_all(server.parent().unwrap()).unwrap();
    std::fs::write(&server, "// someone else's plugin\n").unwrap();

    let out = bshare(home.path(), home.path(), &["plugin", "install"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&server).unwrap(),
        "// someone else's plugin\n"
    );

    let out = bshare(home.path(), home.path(), &["plugin", "install", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("updated the server plugin"));
    assert_eq!(std::fs::read_to_string(&server).unwrap(), SERVER_PLUGIN_JS);
}

#[test]
fn project_install_goes_into_dot_opencode_of_the_current_directory() {
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let out = bshare(
        home.path(),
        project.path(),
        &["plugin", "install", "--project"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let dot = project.path().join(".opencode");
    assert_eq!(
        std::fs::read_to_string(dot.join("plugins/bshare.js")).unwrap(),
        SERVER_PLUGIN_JS
    );
    let tui_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dot.join("tui.json")).unwrap()).unwrap();
    assert_eq!(tui_json["plugin"], serde_json::json!(["./bshare/tui.js"]));
    assert!(!home.path().join(".config/opencode").exists());
}
