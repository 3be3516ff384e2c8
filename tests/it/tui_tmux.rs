//! `bshare tui` in a real terminal: tmux runs it, keys go in with `send-keys`, the screen comes
//! back with `capture-pane`.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{Env, Stores, read_data, share_document};

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

/// A registry with the given share first, then two shares its server does not know.
fn write_registry(data_home: &Path, server: &str, created: &serde_json::Value) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let share = |id: &str, secret: &str, title: &str, ago_min: i64| {
        serde_json::json!({
            "shareId": id, "sessionId": format!("ses_{id}"), "secret": secret,
            "url": format!("{server}/share/{id}"), "server": server, "title": title,
            "createdAt": now - ago_min * 60_000, "updatedAt": now - ago_min * 60_000,
        })
    };
    let id = created["shareId"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    let registry = serde_json::json!({
        "version": 1,
        "shares": [
            share(id, secret, "Add multiply, tests and CLI", 5),
            share("LoginBug1", "x", "Fix login redirect loop", 60),
            share("LoginCss1", "x", "Login page styles", 120),
        ],
    });
    let dir = data_home.join("bshare");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("shares.json"), registry.to_string()).unwrap();
}

#[test]
fn browse_filter_preview_and_quit_in_a_real_terminal() {
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[]);
    let created = share_document(&server, &read_data("opencode-1.18.33-long.sharedata.json"));
    let share_id = created["shareId"].as_str().unwrap().to_owned();
    let tmp = tempfile::tempdir().unwrap();
    write_registry(tmp.path(), &server.base, &created);
    let tmux = Tmux::start(
        120,
        32,
        &[("XDG_DATA_HOME", tmp.path()), ("HOME", tmp.path())],
        // The shell reports the exit status on the normal screen once the TUI has left its own,
        // then stays: tmux may drop the last output of a pane whose process is gone.
        &[
            "sh",
            "-c",
            "\"$0\" tui; echo \"bshare exited with status $?\"; sleep 600",
            env!("CARGO_BIN_EXE_bshare"),
        ],
    );

    // The list, newest share first.
    let screen = tmux.wait_all(&["3 shares", "Add multiply", "Login page styles"]);
    let first = screen.find("Add multiply").unwrap();
    let last = screen.find("Login page styles").unwrap();
    assert!(first < last, "{screen}");
    assert_eq!(
        tmux.pane("#{alternate_on}"),
        "1",
        "runs on the alternate screen"
    );

    // Filter.
    tmux.keys(&["/"]);
    tmux.type_text("login");
    tmux.wait_for("the filtered list", |s| {
        s.contains("2 of 3 shares match /login")
            && s.contains("Login page styles")
            && !s.contains("Add multiply")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the filter cleared", |s| {
        s.contains("3 shares") && s.contains("Add multiply")
    });

    // A share its server does not know: the server's sentence shows, nothing hangs.
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

    // Preview of the long session as the server serves it, then scroll to its end.
    tmux.keys(&["g", "Enter"]);
    tmux.wait_all(&["▍You", "[long-1] Please add", "todowrite", " top "]);
    tmux.keys(&["G"]);
    tmux.wait_all(&[" end ", "Want me to commit these?"]);

    // Re-sync and unshare go through the backend; this build's backend explains that it cannot.
    tmux.keys(&["s"]);
    tmux.wait_text("re-sync is not available");
    tmux.keys(&["d"]);
    tmux.wait_text(&format!(
        "Unshare “Add multiply, tests and CLI” ({share_id})?"
    ));
    tmux.keys(&["n"]);
    tmux.wait_text("Unshare cancelled.");
    tmux.keys(&["d"]);
    tmux.wait_text("The link stops working");
    tmux.keys(&["y"]);
    tmux.wait_text("unshare is not available");

    // Help, then quit: the program exits cleanly and leaves the alternate screen.
    tmux.keys(&["?"]);
    tmux.wait_text("any key closes this help");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the help closed", |s| !s.contains("any key closes"));
    tmux.keys(&["q"]);
    tmux.wait_text("bshare exited with status 0");
    assert_eq!(tmux.pane("#{alternate_on}"), "0", "alternate screen left");
}
