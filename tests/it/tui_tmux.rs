//! `bshare tui` in a real terminal: tmux runs it, keys go in with `send-keys`, the screen comes
//! back with `capture-pane`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bshare::registry;

use crate::support::{Env, Server, Stores, get};

/// A tmux server of our own (its own socket), killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16, env: &[(&str, &Path)], program: &[&str]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "bshare-it-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let tmux = Self { socket };
        let mut args: Vec<String> = [
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "--",
            "env",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        args.extend(env.iter().map(|(k, v)| format!("{k}={}", v.display())));
        args.extend(program.iter().map(ToString::to_string));
        tmux.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is needed by this test (apt-get install tmux)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        self.run(&args);
    }

    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "t", "-l", text]);
    }

    fn pane(&self, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", "t", format])
            .trim()
            .to_owned()
    }

    /// Waits until the screen satisfies `check`; fails with the last screen after 15 s.
    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_text(&self, text: &str) -> String {
        self.wait_for(text, |s| s.contains(text))
    }

    /// Waits for all the texts on one screen: a capture may catch a frame half drawn.
    fn wait_all(&self, texts: &[&str]) -> String {
        self.wait_for(&texts.join(", "), |s| texts.iter().all(|t| s.contains(t)))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

const LONG: &str = "ses_df514140fffe4u9ZGLczLpllLo";

/// A user's machine: OpenCode's data (the fixture database), a bshare server, the long session
/// shared on it with `bshare share`, two more shares in the registry that the server does not know,
/// and a browser opener and a clipboard program that write what they get to files.
struct Machine {
    tmp: tempfile::TempDir,
    server: Server,
    _env: Env,
    share_id: String,
    url: String,
}

impl Machine {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let ok = Command::new("tar")
            .arg("-xzf")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/opencode-1.18.33-datadir.tar.gz"
            ))
            .arg("-C")
            .arg(&data)
            .status()
            .unwrap()
            .success();
        assert!(ok, "unpack the OpenCode data directory");
        for (name, body) in [
            (
                "opener",
                "#!/bin/sh\nprintf '%s' \"$1\" > \"$(dirname \"$0\")/opened.txt\"\n",
            ),
            (
                "clipboard",
                "#!/bin/sh\ncat > \"$(dirname \"$0\")/clipboard.txt\"\n",
            ),
        ] {
            let path = tmp.path().join(name);
            std::fs::write(&path, body).unwrap();
            let mut perms = std::fs::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
            std::fs::set_permissions(&path, perms).unwrap();
        }
        let env = Env::new(Stores::Embedded);
        let server = env.server(&[]);
        let mut machine = Self {
            tmp,
            server,
            _env: env,
            share_id: String::new(),
            url: String::new(),
        };
        let out = machine
            .command(env!("CARGO_BIN_EXE_bshare"))
            .args(["share", LONG])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bshare share: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let registry_path = machine.data().join("bshare/shares.json");
        let shared = registry::load(&registry_path).unwrap().shares[0].clone();
        machine.share_id.clone_from(&shared.share_id);
        machine.url.clone_from(&shared.url);
        // OpenCode went on with the session a moment after it was shared.
        let db = rusqlite::Connection::open(machine.data().join("opencode/opencode.db")).unwrap();
        db.execute(
            "UPDATE session SET time_updated = ?1 WHERE id = ?2",
            rusqlite::params![shared.updated_at + 1, LONG],
        )
        .unwrap();
        let extra = |id: &str, title: &str, ago_min: i64| registry::Entry {
            share_id: id.into(),
            session_id: format!("ses_{id}"),
            secret: "not-the-secret".into(),
            url: machine.server.url(&format!("/share/{id}")),
            server: machine.server.base.clone(),
            title: title.into(),
            created_at: shared.created_at - ago_min * 60_000,
            updated_at: shared.created_at - ago_min * 60_000,
            extra: serde_json::Map::new(),
        };
        registry::update(&registry_path, |r| {
            r.upsert(extra("LoginBug1", "Fix login redirect loop", 60));
            r.upsert(extra("LoginCss1", "Login page styles", 600));
        })
        .unwrap();
        machine
    }

    fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("HOME", self.tmp.path().join("home")),
            ("XDG_DATA_HOME", self.data()),
            ("BSHARE_OPENER", self.tmp.path().join("opener")),
            ("BSHARE_CLIPBOARD", self.tmp.path().join("clipboard")),
        ]
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.env())
            .env_remove("BSHARE_OPENCODE_DIR")
            .env_remove("OPENCODE_DB")
            .env("BETTER_SHARE_BASE_URL", &self.server.base);
        cmd
    }

    fn written(&self, name: &str) -> String {
        std::fs::read_to_string(self.tmp.path().join(name)).unwrap_or_default()
    }

    fn document_updated_at(&self) -> i64 {
        let r = get(&self.server.url(&format!("/api/share/{}", self.share_id)));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["updatedAt"].as_i64().unwrap()
    }
}

#[test]
fn browse_filter_preview_sync_and_unshare_in_a_real_terminal() {
    let machine = Machine::new();
    let share_id = machine.share_id.clone();
    let env = machine.env();
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let tmux = Tmux::start(
        130,
        32,
        &env,
        // The shell reports the exit status on the normal screen once the TUI has left its own,
        // then stays: tmux may drop the last output of a pane whose process is gone.
        &[
            "sh",
            "-c",
            "\"$0\" tui; echo \"bshare exited with status $?\"; sleep 600",
            env!("CARGO_BIN_EXE_bshare"),
        ],
    );

    // The list, newest first: the registry's shares and the two OpenCode made itself, with
    // whether each local session changed since its upload.
    let screen = tmux.wait_all(&[
        "5 shares",
        "Add multiply",
        "Login page styles",
        "List comprehension vs map (OpenCode)",
        "changed",
    ]);
    let first = screen.find("Add multiply").unwrap();
    let last = screen.find("Login page styles").unwrap();
    assert!(first < last, "{screen}");
    let row = screen.lines().find(|l| l.contains("Add multiply")).unwrap();
    assert!(row.contains(&share_id) && row.contains("changed"), "{row}");
    let row = screen.lines().find(|l| l.contains("Login page")).unwrap();
    assert!(row.contains("gone"), "OpenCode has no such session: {row}");
    assert_eq!(
        tmux.pane("#{alternate_on}"),
        "1",
        "runs on the alternate screen"
    );

    // Filter.
    tmux.keys(&["/"]);
    tmux.type_text("login");
    tmux.wait_for("the filtered list", |s| {
        s.contains("2 of 5 shares match /login")
            && s.contains("Login page styles")
            && !s.contains("Add multiply")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the filter cleared", |s| {
        s.contains("5 shares") && s.contains("Add multiply")
    });

    // A share whose session is not on this machine is fetched from its server, which does not
    // know it: the server's sentence shows, nothing hangs.
    tmux.keys(&["/"]);
    tmux.type_text("redirect");
    tmux.keys(&["Enter", "Enter"]);
    tmux.wait_text("no share with this id exists");
    // One Escape at a time, as a person types them: several in one read are an escape sequence.
    tmux.keys(&["Escape"]);
    thread::sleep(Duration::from_millis(100));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the preview closed", |s| !s.contains("Could not load"));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the filter cleared", |s| !s.contains("match /"));

    // Preview of the long session, then scroll to its end.
    tmux.keys(&["g", "Enter"]);
    tmux.wait_all(&["▍You", "[long-1] Please add", "todowrite", " top "]);
    tmux.keys(&["G"]);
    tmux.wait_all(&[" end ", "Want me to commit these?"]);

    // Re-sync: the server gets the session again, with its explore subagent, and the row no
    // longer says "changed".
    let before = machine.document_updated_at();
    // The first upload in this run is reviewed first: size, messages, secrets found.
    tmux.keys(&["s"]);
    tmux.wait_all(&[
        "Review before upload",
        "with 1 subagent session",
        "No secrets found.",
        "y upload",
    ]);
    tmux.keys(&["y"]);
    let screen = tmux.wait_text(&format!(
        "Synced {share_id} “Add multiply, tests and CLI” (with 1 subagent session)."
    ));
    assert!(!screen.contains("✗"), "{screen}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the row up to date", |s| {
        s.lines()
            .find(|l| l.contains("Add multiply"))
            .is_some_and(|l| !l.contains("changed"))
    });
    assert!(machine.document_updated_at() > before, "uploaded again");

    // Open and copy go through the user's opener and clipboard programs.
    tmux.keys(&["o"]);
    tmux.wait_text(&format!("Opened {share_id} in the browser."));
    assert_eq!(machine.written("opened.txt"), machine.url);
    tmux.keys(&["c"]);
    tmux.wait_text(&format!("Copied {}", machine.url));
    assert_eq!(machine.written("clipboard.txt"), machine.url);

    // Unshare asks first; "n" keeps the share, "y" takes it down.
    tmux.keys(&["d"]);
    tmux.wait_text(&format!(
        "Unshare “Add multiply, tests and CLI” ({share_id})?"
    ));
    tmux.keys(&["n"]);
    tmux.wait_text("Unshare cancelled.");
    machine.document_updated_at(); // still served
    tmux.keys(&["d"]);
    tmux.wait_text("The link stops working");
    tmux.keys(&["y"]);
    tmux.wait_all(&[&format!("Took down {}", machine.url), "4 shares"]);
    let gone = get(&machine.server.url(&format!("/share/{share_id}")));
    assert_eq!(gone.status, 410, "the page says the share was taken down");

    // Help, then quit: the program exits cleanly and leaves the alternate screen.
    tmux.keys(&["?"]);
    tmux.wait_text("any key closes this help");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the help closed", |s| !s.contains("any key closes"));
    tmux.keys(&["q"]);
    tmux.wait_text("bshare exited with status 0");
    assert_eq!(tmux.pane("#{alternate_on}"), "0", "alternate screen left");
}
