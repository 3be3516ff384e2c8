//! OpenCode's own share protocol end to end: the traffic OpenCode 1.18.33 sent, replayed over HTTP
//! on both store pairs, and the real OpenCode sharing, syncing, importing and unsharing through
//! `bshare serve` with no plugin, its model played by `fake_model`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fake_model::{self, FakeModel};
use crate::support::{Env, Resp, Server, Stores, eventually, get, http, post_json, read_data};

const LONG_SESSION: &str = "ses_df514140fffe4u9ZGLczLpllLo";
const SHORT_SESSION: &str = "ses_df514253affeB36ro8YNVEUXH4";

// ---------------------------------------------------------------------------------------------
// Recorded traffic

/// The recorded sync batches (their `data` lists) of the share made for `session_id`, in order.
fn recorded_batches(session_id: &str) -> Vec<Value> {
    let text = String::from_utf8(read_data("opencode-1.18.33-share-sync.jsonl")).unwrap();
    let requests: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let path = requests
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/sync"))
        .find(|r| {
            r["body"]["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["type"] == "session" && i["data"]["id"] == session_id)
        })
        .map(|r| r["path"].clone())
        .expect("the recording has a share of this session");
    requests
        .iter()
        .filter(|r| r["path"] == path)
        .map(|r| r["body"]["data"].clone())
        .collect()
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&read_data(&format!(
        "opencode-1.18.33-{name}.sharedata.json"
    )))
    .unwrap()
}

/// `POST /api/share` as OpenCode sends it; the answer `{id, url, secret}`.
fn create(server: &Server, session_id: &str) -> Value {
    let r = post_json(
        &server.url("/api/share"),
        &json!({ "sessionID": session_id }),
    );
    assert_eq!(r.status, 200, "create: {}", r.text());
    r.json()
}

fn sync(server: &Server, id: &str, secret: &str, items: &Value) -> Resp {
    post_json(
        &server.url(&format!("/api/share/{id}/sync")),
        &json!({ "secret": secret, "data": items }),
    )
}

mod embedded {
    #[test]
    fn recorded_opencode_traffic_rebuilds_the_session() {
        super::recorded_opencode_traffic_rebuilds_the_session(super::Stores::Embedded);
    }
    #[test]
    fn two_servers_merge_one_share() {
        super::two_servers_merge_one_share(super::Stores::Embedded);
    }
}

mod postgres_s3 {
    #[test]
    fn recorded_opencode_traffic_rebuilds_the_session() {
        super::recorded_opencode_traffic_rebuilds_the_session(super::Stores::PostgresS3);
    }
    #[test]
    fn two_servers_merge_one_share() {
        super::two_servers_merge_one_share(super::Stores::PostgresS3);
    }
}

fn recorded_opencode_traffic_rebuilds_the_session(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&[]);
    let created = create(&server, LONG_SESSION);
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert_eq!(created["url"], server.url(&format!("/share/{id}")));

    let batches = recorded_batches(LONG_SESSION);
    assert_eq!(batches.len(), 3);
    for batch in &batches {
        let r = sync(&server, id, secret, batch);
        assert_eq!(r.status, 200, "sync: {}", r.text());
    }

    // The fixture was taken before the last turn: its messages come first, exactly.
    let doc = get(&server.url(&format!("/api/share/{id}"))).json();
    let expected = fixture("long");
    let messages = doc["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 26);
    assert_eq!(messages[..23], expected["messages"].as_array().unwrap()[..]);
    assert_eq!(doc["sessionId"], LONG_SESSION);
    assert_eq!(doc["session"]["title"], "Add multiply, tests and CLI");

    // What `opencode import` reads: the session first, then every message and part.
    let data = get(&server.url(&format!("/api/share/{id}/data")));
    assert_eq!(data.status, 200);
    let items = data.json();
    let items = items.as_array().unwrap();
    assert_eq!(items[0]["type"], "session");
    let count = |kind: &str| items.iter().filter(|i| i["type"] == kind).count();
    assert_eq!(count("message"), 26);
    let parts: usize = messages
        .iter()
        .map(|m| m["parts"].as_array().unwrap().len())
        .sum();
    assert_eq!(count("part"), parts);

    let page = get(&server.url(&format!("/share/{id}")));
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("[long-3]"),
        "the last turn is on the page"
    );

    // The secret never reaches the log.
    assert!(!server.logs().contains(secret));
}

fn two_servers_merge_one_share(stores: Stores) {
    let env = Env::new(stores);
    let a = env.server(&[]);
    let b = env.server(&[]);
    let created = create(&a, SHORT_SESSION);
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();

    let batch = recorded_batches(SHORT_SESSION).remove(0);
    let items = batch.as_array().unwrap();
    let head: Vec<Value> = items
        .iter()
        .filter(|i| i["type"] != "part")
        .cloned()
        .collect();
    // The parts that name util.py arrive last, through B alone.
    let (late, parts): (Vec<Value>, Vec<Value>) = items
        .iter()
        .filter(|i| i["type"] == "part")
        .cloned()
        .partition(|p| p.to_string().contains("util.py"));
    assert!(!late.is_empty() && !parts.is_empty());
    assert_eq!(sync(&a, &id, &secret, &json!(head)).status, 200);

    // Both servers get every other part, one part per request, at the same time.
    std::thread::scope(|s| {
        for (n, server) in [&a, &b].into_iter().enumerate() {
            let mine: Vec<Value> = parts.iter().skip(n).step_by(2).cloned().collect();
            let (id, secret) = (&id, &secret);
            s.spawn(move || {
                for part in mine {
                    let r = sync(server, id, secret, &json!([part]));
                    assert_eq!(r.status, 200, "sync: {}", r.text());
                }
            });
        }
    });
    // Server A has the page in its cache now, without the answer that names util.py. A share
    // OpenCode created has no upload URL: A's cache is never checked against the object.
    let page = get(&a.url(&format!("/share/{id}")));
    assert_eq!(page.status, 200);
    assert!(!page.text().contains("util.py"));
    for part in &late {
        assert_eq!(sync(&b, &id, &secret, &json!([part])).status, 200);
    }

    let expected = fixture("short");
    for server in [&a, &b] {
        let doc = get(&server.url(&format!("/api/share/{id}"))).json();
        assert_eq!(
            doc["messages"], expected["messages"],
            "no part was lost between the two servers"
        );
    }
    match stores {
        // Only B changed the document since A cached its page: A learns it from B's NOTIFY.
        Stores::PostgresS3 => assert!(
            eventually(Duration::from_secs(10), || get(
                &a.url(&format!("/share/{id}"))
            )
            .text()
            .contains("util.py")),
            "server A's page follows what arrived through B"
        ),
        // Two servers on one SQLite data directory do not tell each other (README, known
        // limits): A's cached page stays as it was until A itself changes the share.
        Stores::Embedded => {
            assert!(
                !get(&a.url(&format!("/share/{id}")))
                    .text()
                    .contains("util.py")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The real OpenCode

fn opencode_binary() -> PathBuf {
    let path = std::env::var_os("BSHARE_TEST_OPENCODE").unwrap_or_else(|| {
        panic!(
            "BSHARE_TEST_OPENCODE is not set. Run the tests with `scripts/test`, which installs \
             opencode-ai@1.18.33 from npm, or point it at an OpenCode 1.18.x binary."
        )
    });
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "BSHARE_TEST_OPENCODE={} is not a file",
        path.display()
    );
    path
}

/// A user's machine for OpenCode: its own home, config, data and cache directories, and a
/// project directory whose `opencode.json` names the bshare server and the fake model.
struct Machine {
    root: tempfile::TempDir,
}

impl Machine {
    fn new(share_server: &str, model: &FakeModel) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let machine = Self { root };
        std::fs::create_dir_all(machine.project()).unwrap();
        std::fs::create_dir_all(machine.home()).unwrap();
        let config = json!({
            "$schema": "https://opencode.ai/config.json",
            "enterprise": { "url": share_server },
            "model": "fake/m1",
            "autoupdate": false,
            "provider": {
                "fake": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "Fake",
                    "options": { "baseURL": model.base_url, "apiKey": "not-needed" },
                    "models": { "m1": { "name": "Fake Model", "tool_call": true } },
                },
            },
        });
        std::fs::write(
            machine.project().join("opencode.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        machine
    }

    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    fn project(&self) -> PathBuf {
        self.root.path().join("project")
    }

    /// `opencode <args>` in the project directory, with nothing from the caller's environment but
    /// `PATH` (OpenCode needs `rg`, `git` and a shell from it).
    fn command(&self, args: &[&str]) -> Command {
        let home = self.home();
        let mut cmd = Command::new(opencode_binary());
        cmd.args(args)
            .current_dir(self.project())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("SHELL", "/bin/sh")
            .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
            .env("OPENCODE_DISABLE_AUTOUPDATE", "1")
            .env("OPENCODE_DISABLE_LSP_DOWNLOAD", "1")
            .stdin(Stdio::null());
        if let Some(tmp) = std::env::var_os("TMPDIR") {
            cmd.env("TMPDIR", tmp);
        }
        cmd
    }

    /// Run a one-shot command; its stdout, or a panic with everything it printed.
    fn run(&self, args: &[&str]) -> String {
        let out = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run opencode {args:?}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "opencode {args:?} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// The secret OpenCode keeps for its share of `session` (as `bshare` reads it to take a share
    /// OpenCode made down).
    fn share_secret(&self, session: &str) -> String {
        let db = self.home().join(".local/share/opencode/opencode.db");
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", db.display()));
        conn.query_row(
            "SELECT secret FROM session_share WHERE session_id = ?1",
            [session],
            |r| r.get(0),
        )
        .expect("OpenCode recorded the share")
    }

    /// `opencode serve` on a free loopback port.
    fn serve(&self) -> OpenCode {
        let mut child = self
            .command(&[
                "serve",
                "--hostname",
                "127.0.0.1",
                "--port",
                "0",
                "--print-logs",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so the tools it started go with it.
            .process_group(0)
            .spawn()
            .expect("start opencode serve");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let streams: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for stream in streams {
            let (logs, tx) = (Arc::clone(&logs), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("server listening on ").nth(1) {
                        let _ = tx.send(rest.trim().to_owned());
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let mut opencode = OpenCode {
            child,
            base: String::new(),
            logs,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => opencode.base = base,
            Err(e) => panic!(
                "opencode serve did not say where it listens ({e}):\n{}",
                opencode.logs()
            ),
        }
        opencode
    }
}

/// A running `opencode serve`, stopped (with its process group) when dropped.
struct OpenCode {
    child: Child,
    base: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl OpenCode {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let bytes = body.map(Value::to_string);
        let r = crate::support::http_within(
            Duration::from_secs(180),
            method,
            &self.url(path),
            &[("Content-Type", "application/json")],
            bytes.as_deref().map(str::as_bytes),
        );
        assert_eq!(
            r.status,
            200,
            "OpenCode {method} {path}: {}\n--- OpenCode's log:\n{}",
            r.text(),
            self.logs()
        );
        r.json()
    }

    /// Send a prompt and wait for the reply (OpenCode answers when the turn is over).
    fn prompt(&self, session: &str, text: &str) -> Value {
        self.call(
            "POST",
            &format!("/session/{session}/message"),
            Some(&json!({
                "parts": [{ "type": "text", "text": text }],
                "model": { "providerID": "fake", "modelID": "m1" },
            })),
        )
    }

    fn messages(&self, session: &str) -> Value {
        self.call("GET", &format!("/session/{session}/message"), None)
    }
}

impl Drop for OpenCode {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text_parts(message: &Value) -> String {
    message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "text")
        .filter_map(|p| p["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn part_ids(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["parts"].as_array().unwrap())
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn stock_opencode_shares_syncs_imports_and_unshares_through_bshare() {
    let model = FakeModel::start();
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[]);
    let alice = Machine::new(&server.base, &model);
    let opencode = alice.serve();

    let session = opencode.call("POST", "/session", Some(&json!({})));
    let session_id = session["id"].as_str().unwrap().to_owned();
    let first = opencode.prompt(&session_id, "Which share server is this?");
    assert_eq!(
        text_parts(&first),
        "Answer to: Which share server is this?",
        "OpenCode completed a turn against the fake model"
    );

    // OpenCode's own share: it asks bshare for a share and syncs the whole session.
    let shared = opencode.call("POST", &format!("/session/{session_id}/share"), None);
    let url = shared["share"]["url"].as_str().unwrap().to_owned();
    let share_id = url
        .strip_prefix(&format!("{}/share/", server.base))
        .unwrap_or_else(|| panic!("share url {url} is on the bshare server"))
        .to_owned();
    let page_url = server.url(&format!("/share/{share_id}"));
    poll(
        "the first turn on the page",
        Duration::from_secs(20),
        || {
            let page = get(&page_url);
            (page.status == 200 && page.text().contains("Which share server is this?"))
                .then_some(())
        },
    );

    // A turn after sharing, with a tool call: synced as it happens.
    let second = opencode.prompt(&session_id, "Check the tool. RUN: echo synced-by-opencode");
    assert_eq!(
        text_parts(&second),
        "The command printed: synced-by-opencode"
    );
    poll(
        "the second turn on the page",
        Duration::from_secs(20),
        || {
            let page = get(&page_url).text();
            (page.contains("Check the tool.")
                && page.contains("The command printed: synced-by-opencode"))
            .then_some(())
        },
    );

    // Once OpenCode has sent everything, the document holds the session exactly as OpenCode
    // lists it, title (which OpenCode asked the model for) included.
    let doc_url = server.url(&format!("/api/share/{share_id}"));
    let messages = poll(
        "the document to match OpenCode's session",
        Duration::from_secs(20),
        || {
            let expected = opencode.messages(&session_id);
            let session = opencode.call("GET", &format!("/session/{session_id}"), None);
            let doc = get(&doc_url).json();
            (doc["messages"] == expected && doc["session"] == session).then_some(expected)
        },
    );
    let doc = get(&doc_url).json();
    assert_eq!(doc["session"]["title"], fake_model::TITLE);
    let tool = messages
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["parts"].as_array().unwrap())
        .find(|p| p["type"] == "tool")
        .expect("the bash call is in the session");
    assert_eq!(tool["state"]["status"], "completed");
    assert!(model.requests().iter().any(|r| r["tools"].is_array()));

    // Someone else imports the share with OpenCode's own command.
    let bob = Machine::new(&server.base, &model);
    let imported = bob.run(&["import", &url]);
    assert!(
        imported.contains(&format!("Imported session: {session_id}")),
        "opencode import said: {imported}"
    );
    let exported: Value = serde_json::from_str(&bob.run(&["export", &session_id]))
        .expect("opencode export prints the session as JSON");
    let exported = &exported["messages"];
    assert_eq!(
        exported.as_array().unwrap().len(),
        messages.as_array().unwrap().len()
    );
    assert_eq!(part_ids(exported), part_ids(&messages));

    // OpenCode's unshare deletes the share: the link answers 410 from then on.
    opencode.call("DELETE", &format!("/session/{session_id}/share"), None);
    assert_eq!(get(&page_url).status, 410);
    assert_eq!(
        get(&server.url(&format!("/api/share/{share_id}/data"))).status,
        410
    );

    // A share taken down elsewhere first (as `bshare unshare` does with the secret OpenCode
    // keeps): OpenCode's own unshare still succeeds afterwards.
    let other = opencode.call("POST", "/session", Some(&json!({})));
    let other = other["id"].as_str().unwrap().to_owned();
    opencode.prompt(&other, "Another question");
    let shared = opencode.call("POST", &format!("/session/{other}/share"), None);
    let other_url = shared["share"]["url"].as_str().unwrap().to_owned();
    let other_share = other_url.rsplit('/').next().unwrap().to_owned();
    let secret = alice.share_secret(&other);
    let taken_down = http(
        "DELETE",
        &server.url(&format!("/api/share/{other_share}")),
        &[("X-Share-Secret", &secret)],
        None,
    );
    assert_eq!(taken_down.status, 200, "{}", taken_down.text());
    opencode.call("DELETE", &format!("/session/{other}/share"), None);
    assert_eq!(get(&other_url).status, 410);
    assert!(
        !server.logs().contains(&secret),
        "the secret never reaches the log"
    );
}

/// A server that only lets token holders create: stock OpenCode presents the token as the
/// `/t/<token>` prefix of its `enterprise.url`, and the links it gets back stay plain.
#[test]
fn stock_opencode_shares_through_a_token_prefixed_url() {
    const TOKEN: &str = "team-token-7f3a9c2e51";
    let model = FakeModel::start();
    let env = Env::new(Stores::Embedded);
    let server = env.server(&["--create-token", &format!("other-token,{TOKEN}")]);
    let alice = Machine::new(&format!("{}/t/{TOKEN}", server.base), &model);
    let opencode = alice.serve();

    let session = opencode.call("POST", "/session", Some(&json!({})));
    let session_id = session["id"].as_str().unwrap().to_owned();
    opencode.prompt(&session_id, "Shared through a token prefix?");
    let shared = opencode.call("POST", &format!("/session/{session_id}/share"), None);
    let url = shared["share"]["url"].as_str().unwrap().to_owned();
    let share_id = url
        .strip_prefix(&format!("{}/share/", server.base))
        .unwrap_or_else(|| panic!("share url {url} is a plain /share/<id> link"))
        .to_owned();
    let page_url = server.url(&format!("/share/{share_id}"));
    poll("the turn on the page", Duration::from_secs(20), || {
        let page = get(&page_url);
        (page.status == 200 && page.text().contains("Shared through a token prefix?")).then_some(())
    });
    // Syncs keep arriving through the prefix.
    opencode.prompt(&session_id, "Check the tool. RUN: echo after-the-prefix");
    poll(
        "the second turn on the page",
        Duration::from_secs(20),
        || {
            get(&page_url)
                .text()
                .contains("The command printed: after-the-prefix")
                .then_some(())
        },
    );
    opencode.call("DELETE", &format!("/session/{session_id}/share"), None);
    assert_eq!(get(&page_url).status, 410);

    let logs = server.logs();
    assert!(logs.contains("POST /t/…/api/share "), "{logs}");
    assert!(
        !logs.contains(TOKEN),
        "the token never reaches the log:\n{logs}"
    );
}

/// Stock OpenCode shares a session holding one secret of each family through its own protocol,
/// reaching a token-guarded server through the `/t/<token>` prefix: the server redacts each sync
/// batch before merging, so the stored object and every page variant hold none of them.
#[test]
fn stock_opencode_sync_is_redacted_by_the_server() {
    // As a team deploys it: only token holders create, and stock OpenCode carries the token
    // in its enterprise.url.
    const TOKEN: &str = "redaction-team-token-41c9";
    let model = FakeModel::start();
    let env = Env::new(Stores::Embedded);
    let server = env.server(&["--create-token", TOKEN]);
    let alice = Machine::new(&format!("{}/t/{TOKEN}", server.base), &model);
    let opencode = alice.serve();

    let session = opencode.call("POST", "/session", Some(&json!({})));
    let session_id = session["id"].as_str().unwrap().to_owned();
    opencode.prompt(&session_id, &crate::redaction::session_text());
    let shared = opencode.call("POST", &format!("/session/{session_id}/share"), None);
    let url = shared["share"]["url"].as_str().unwrap().to_owned();
    let share_id = url
        .strip_prefix(&format!("{}/share/", server.base))
        .unwrap_or_else(|| panic!("{url} is not a plain /share/<id> link"))
        .to_owned();

    // Once OpenCode has sent the whole turn, the document has its messages, redacted.
    let expected = opencode.messages(&session_id).as_array().unwrap().len();
    let doc_url = server.url(&format!("/api/share/{share_id}"));
    poll("the synced turn", Duration::from_secs(30), || {
        let doc = get(&doc_url);
        (doc.status == 200
            && doc.json()["messages"]
                .as_array()
                .is_some_and(|m| m.len() == expected)
            && doc.text().contains("Not secrets:"))
        .then_some(())
    });
    let object = env.dir.path().join(format!(
        "server/objects/sessions/{}.json",
        bshare::model::case_safe_stem(&share_id)
    ));
    let stored = std::fs::read(&object).unwrap();
    let secrets = crate::redaction::secrets();
    crate::redaction::assert_redacted_everywhere(
        &server,
        &share_id,
        &stored,
        secrets.entries.len() as u64,
    );
    assert!(!server.logs().contains(TOKEN), "the token reached the log");
}
