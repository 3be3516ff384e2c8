//! The `bshare` commands of the terminal side, run as the real binary against a real server
//! (embedded default) with OpenCode data directories in both layouts built from `tests/data`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bshare::client::Client;
use bshare::model::ShareData;
use bshare::registry;
use serde_json::Value;

use crate::support::{Env, Server, Stores};

const SHORT: &str = "ses_df514253affeB36ro8YNVEUXH4";
const LONG: &str = "ses_df514140fffe4u9ZGLczLpllLo";
/// The explore subagent the long session's `task` call ran.
const CHILD: &str = "ses_df513f00effeN6zuJLa81BZRUQ";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layout {
    Sqlite,
    JsonTree,
}

/// A user's machine: a home, OpenCode's data in one layout, a working directory inside the
/// sessions' project, and a server.
struct Machine {
    tmp: tempfile::TempDir,
    layout: Layout,
    server: Server,
    stores: Env,
}

impl Machine {
    fn new(layout: Layout) -> Self {
        Self::with_server(layout, Stores::Embedded, &[])
    }

    /// On the given stores, with extra `bshare serve` flags.
    fn with_server(layout: Layout, stores: Stores, server_flags: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("calc");
        std::fs::create_dir_all(project.join("src")).unwrap();
        let opencode = tmp.path().join("data/opencode");
        match layout {
            Layout::Sqlite => {
                std::fs::create_dir_all(tmp.path().join("data")).unwrap();
                let tarball = concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/data/opencode-1.18.33-datadir.tar.gz"
                );
                let ok = Command::new("tar")
                    .arg("-xzf")
                    .arg(tarball)
                    .arg("-C")
                    .arg(tmp.path().join("data"))
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "unpack {tarball}");
                // The project lived in /home/dev/calc; move it where this test can `cd`.
                let db = rusqlite::Connection::open(opencode.join("opencode.db")).unwrap();
                let dir = project.to_str().unwrap();
                db.execute("UPDATE session SET directory = ?1", [dir])
                    .unwrap();
                db.execute("UPDATE project SET worktree = ?1", [dir])
                    .unwrap();
            }
            Layout::JsonTree => {
                for name in ["short", "long"] {
                    let mut doc = fixture(name);
                    doc.session["directory"] = project.to_str().unwrap().into();
                    bshare::opencode::json_tree::write_session(
                        &opencode.join("storage"),
                        &doc.session,
                        &doc.messages,
                    )
                    .unwrap();
                }
            }
        }
        let env = Env::new(stores);
        Self {
            tmp,
            layout,
            server: env.server(server_flags),
            stores: env,
        }
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    fn opencode_dir(&self) -> PathBuf {
        self.tmp.path().join("data/opencode")
    }

    fn project(&self) -> PathBuf {
        self.tmp.path().join("calc")
    }

    fn registry_path(&self) -> PathBuf {
        self.tmp.path().join("data/bshare/shares.json")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bshare"));
        cmd.args(args)
            .current_dir(self.project().join("src"))
            .env("HOME", self.home())
            .env("XDG_DATA_HOME", self.tmp.path().join("data"))
            .env_remove("BSHARE_OPENCODE_DIR")
            .env_remove("OPENCODE_DB")
            .env("BETTER_SHARE_BASE_URL", &self.server.base)
            // Never start a real browser or touch the real clipboard.
            .env("BSHARE_OPENER", "")
            .env("BSHARE_CLIPBOARD", "/nonexistent/clipboard")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Run and expect success; returns stdout and stderr.
    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let (stdout, stderr) = texts(&out);
        assert!(
            out.status.success(),
            "bshare {args:?} failed\nstdout: {stdout}\nstderr: {stderr}"
        );
        (stdout, stderr)
    }

    /// Run and expect failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let (stdout, stderr) = texts(&out);
        assert!(
            !out.status.success(),
            "bshare {args:?} succeeded\nstdout: {stdout}\nstderr: {stderr}"
        );
        stderr
    }

    fn registry(&self) -> registry::Registry {
        registry::load(&self.registry_path()).unwrap()
    }

    fn client(&self) -> Client {
        Client::new(&self.server.base).unwrap()
    }

    /// The session as OpenCode's data holds it now.
    fn local(&self, session_id: &str) -> bshare::opencode::SessionContent {
        bshare::opencode::OpenCodeData::open(&self.opencode_dir())
            .unwrap()
            .load(session_id)
            .unwrap()
            .unwrap()
    }

    /// Append a user message with one text part, as OpenCode would while the session goes on.
    fn add_message(&self, session_id: &str, text: &str) {
        let info = serde_json::json!({"role": "user", "time": {"created": 1_900_000_000_000_i64}});
        let part = serde_json::json!({"type": "text", "text": text});
        // Ids sort after OpenCode's, as a later message's would.
        let suffix = bshare::crypto::random_hex(6);
        let (mid, pid) = (format!("msg_zz{suffix}"), format!("prt_zz{suffix}"));
        let (mid, pid) = (mid.as_str(), pid.as_str());
        match self.layout {
            Layout::Sqlite => {
                let db =
                    rusqlite::Connection::open(self.opencode_dir().join("opencode.db")).unwrap();
                db.execute(
                    "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?1, ?2, 1900000000000, 0, ?3)",
                    [mid, session_id, &info.to_string()],
                )
                .unwrap();
                db.execute(
                    "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES (?1, ?2, ?3, 0, 0, ?4)",
                    [pid, mid, session_id, &part.to_string()],
                )
                .unwrap();
            }
            Layout::JsonTree => {
                let storage = self.opencode_dir().join("storage");
                let mut info = info;
                info["id"] = mid.into();
                info["sessionID"] = session_id.into();
                let mut part = part;
                part["id"] = pid.into();
                part["sessionID"] = session_id.into();
                part["messageID"] = mid.into();
                let write = |path: PathBuf, v: &Value| {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(path, v.to_string()).unwrap();
                };
                write(
                    storage.join(format!("message/{session_id}/{mid}.json")),
                    &info,
                );
                write(storage.join(format!("part/{mid}/{pid}.json")), &part);
            }
        }
    }

    /// Delete a session from OpenCode's data, as OpenCode's own delete does.
    fn delete_session(&self, session_id: &str) {
        match self.layout {
            Layout::Sqlite => {
                let db =
                    rusqlite::Connection::open(self.opencode_dir().join("opencode.db")).unwrap();
                db.execute_batch("PRAGMA foreign_keys = ON").unwrap();
                let deleted = db
                    .execute("DELETE FROM session WHERE id = ?1", [session_id])
                    .unwrap();
                assert_eq!(deleted, 1, "session {session_id} was not in opencode.db");
            }
            Layout::JsonTree => {
                // The session file sits in its project's directory: exactly one must go.
                let mut removed = 0;
                for dir in std::fs::read_dir(self.opencode_dir().join("storage/session")).unwrap() {
                    let file = dir.unwrap().path().join(format!("{session_id}.json"));
                    match std::fs::remove_file(&file) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => panic!("cannot remove {}: {e}", file.display()),
                    }
                }
                assert_eq!(
                    removed, 1,
                    "session {session_id} was not in storage/session"
                );
            }
        }
    }
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> ShareData {
    let path = format!(
        "{}/tests/data/opencode-1.18.33-{name}.sharedata.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn share_id_of(link: &str) -> String {
    link.trim().rsplit('/').next().unwrap().to_owned()
}

fn http_status(url: &str) -> u16 {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    agent.get(url).call().unwrap().status().as_u16()
}

#[test]
fn sessions_lists_both_layouts() {
    for layout in [Layout::Sqlite, Layout::JsonTree] {
        let m = Machine::new(layout);
        let (out, _) = m.ok(&["sessions"]);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("SESSION"), "{out}");
        assert!(out.contains("Add multiply, tests and CLI"), "{out}");
        assert!(out.contains("List comprehension vs map"), "{out}");
        assert!(out.contains(m.project().to_str().unwrap()), "{out}");
        assert!(
            !out.contains("subagent"),
            "subagents only with --all: {out}"
        );
        if layout == Layout::Sqlite {
            assert_eq!(lines.len(), 4, "{out}");
            let (all, _) = m.ok(&["sessions", "--all"]);
            assert!(all.contains("↳ Scan for TODO comments"), "{all}");
        }
        let (json, _) = m.ok(&["sessions", "--json"]);
        let v: Value = serde_json::from_str(&json).unwrap();
        let long = v
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == LONG)
            .unwrap();
        let expected = if layout == Layout::Sqlite { 26 } else { 23 };
        assert_eq!(long["messages"], expected, "{layout:?}");
    }
}

#[test]
fn share_uploads_the_session_and_records_it() {
    for layout in [Layout::Sqlite, Layout::JsonTree] {
        let m = Machine::new(layout);
        let (link, stderr) = m.ok(&["share", &LONG[..12]]);
        assert!(
            link.starts_with(&format!("{}/share/", m.server.base)),
            "{link}"
        );
        assert!(
            stderr.contains("Shared \"Add multiply, tests and CLI\""),
            "{stderr}"
        );
        assert!(
            !stderr.contains("uploading"),
            "no progress line when stderr is a pipe"
        );
        let id = share_id_of(&link);

        let stored = m.client().document(&id).unwrap();
        let local = m.local(LONG);
        assert_eq!(stored.share_id, id);
        assert_eq!(stored.session_id, LONG);
        assert_eq!(stored.session, local.session);
        assert_eq!(stored.messages, local.messages);
        assert_eq!(http_status(link.trim()), 200);

        let reg = m.registry();
        assert_eq!(reg.shares.len(), 1);
        let entry = &reg.shares[0];
        assert_eq!(
            (
                entry.share_id.as_str(),
                entry.session_id.as_str(),
                entry.server.as_str()
            ),
            (id.as_str(), LONG, m.server.base.as_str())
        );
        assert_eq!(entry.url, link.trim());
        assert!(!entry.secret.is_empty() && entry.updated_at > 0);

        // Sharing it again updates the same share instead of making a second one.
        let (again, stderr) = m.ok(&["share", LONG]);
        assert_eq!(again, link);
        assert!(stderr.contains("Already shared; updated"), "{stderr}");
        assert_eq!(m.registry().shares.len(), 1);
    }
}

/// The same cycle on PostgreSQL and an S3 bucket: the upload goes straight to the bucket with a
/// presigned URL that binds the content type and length.
#[test]
fn share_sync_unshare_on_postgres_and_s3() {
    let m = Machine::with_server(Layout::Sqlite, Stores::PostgresS3, &[]);
    let (link, _) = m.ok(&["share", LONG]);
    let id = share_id_of(&link);
    assert_eq!(
        m.client().document(&id).unwrap().messages,
        m.local(LONG).messages
    );
    m.add_message(LONG, "and on S3?");
    m.ok(&["sync", &id]);
    let stored = m.client().document(&id).unwrap();
    assert_eq!(
        stored.messages.last().unwrap().parts[0]["text"],
        "and on S3?"
    );
    m.ok(&["unshare", &id]);
    assert_eq!(http_status(link.trim()), 410);
    assert!(m.registry().shares.is_empty());
}

#[test]
fn share_without_argument_takes_the_newest_session_of_this_project() {
    let m = Machine::new(Layout::Sqlite);
    let (link, stderr) = m.ok(&["share"]);
    // "Show git log" is the newest top-level session of the project.
    assert!(stderr.contains("\"Show git log\""), "{stderr}");
    let stored = m.client().document(&share_id_of(&link)).unwrap();
    assert_eq!(stored.session_id, "ses_df5117a9affeE0Q45Co64fdNOA");

    // Outside any project there is nothing to pick.
    let out = m
        .command(&["share"])
        .current_dir(m.tmp.path())
        .output()
        .unwrap();
    let (_, stderr) = texts(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("no session in the project"), "{stderr}");
}

/// A large session shows an upload progress line, but only on a terminal (here a pseudo-terminal
/// from util-linux `script`); through a pipe stderr stays clean.
#[test]
fn large_uploads_show_progress_only_on_a_terminal() {
    let m = Machine::new(Layout::Sqlite);
    m.add_message(SHORT, &"lorem ipsum ".repeat(100_000));
    m.add_message(LONG, &"dolor sit amet ".repeat(100_000));

    let (_, stderr) = m.ok(&["share", SHORT]);
    assert!(!stderr.contains("uploading"), "{stderr}");

    let bin = env!("CARGO_BIN_EXE_bshare");
    let env = m.command(&[]);
    let out = Command::new("script")
        .args(["-qec", &format!("'{bin}' share {LONG}"), "/dev/null"])
        .current_dir(m.project())
        .envs(env.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs a command on a pseudo-terminal");
    let (terminal, _) = texts(&out);
    assert!(out.status.success(), "{terminal}");
    assert!(
        terminal.contains("uploading") && terminal.contains("MiB (100%)"),
        "{terminal}"
    );
    assert!(terminal.contains("/share/"), "{terminal}");
}

#[test]
fn share_copy_puts_the_link_on_the_clipboard() {
    let m = Machine::new(Layout::JsonTree);
    let clip = m.tmp.path().join("clipboard.txt");
    let script = m.tmp.path().join("clip.sh");
    std::fs::write(&script, format!("#!/bin/sh\ncat > '{}'\n", clip.display())).unwrap();
    make_executable(&script);
    let out = m
        .command(&["share", SHORT, "--copy"])
        .env("BSHARE_CLIPBOARD", &script)
        .output()
        .unwrap();
    let (link, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("copied to the clipboard"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&clip).unwrap(), link.trim());
}

#[test]
fn ls_lists_shares_with_opencodes_own_and_never_secrets() {
    let m = Machine::new(Layout::Sqlite);
    let (link, _) = m.ok(&["share", LONG]);
    let id = share_id_of(&link);
    let (table, _) = m.ok(&["ls"]);
    let line = table.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        line.contains("Add multiply, tests and CLI") && line.contains(link.trim()),
        "{table}"
    );
    let own = table.lines().find(|l| l.starts_with("abcd1235")).unwrap();
    assert!(own.contains("made by OpenCode"), "{table}");

    let (json, _) = m.ok(&["ls", "--json"]);
    let secret = &m.registry().shares[0].secret;
    assert!(
        !json.contains(secret.as_str()) && !json.contains("s3cr3t"),
        "{json}"
    );
    let v: Value = serde_json::from_str(&json).unwrap();
    let origins: Vec<(&str, &str)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["shareId"].as_str().unwrap(),
                s["origin"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        origins,
        [
            (id.as_str(), "bshare"),
            ("abcd1236", "opencode"),
            ("abcd1235", "opencode")
        ]
    );
}

#[test]
fn share_expires_and_ls_says_when() {
    let m = Machine::new(Layout::Sqlite);
    let (link, stderr) = m.ok(&["share", LONG, "--expires", "7d"]);
    assert!(
        stderr.contains("Expires in 6 d") || stderr.contains("Expires in 7 d"),
        "{stderr}"
    );
    let id = share_id_of(&link);
    let entry = m
        .registry()
        .shares
        .into_iter()
        .find(|e| e.share_id == id)
        .unwrap();
    let at = entry.expires_at().expect("the registry records the expiry");
    let now = bshare::model::now_millis();
    assert!((now + 7 * 86_400_000 - 60_000..=now + 7 * 86_400_000).contains(&at));
    let (table, _) = m.ok(&["ls"]);
    assert!(table.lines().next().unwrap().contains("EXPIRES"), "{table}");
    let line = table.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        line.contains("in 6 d") || line.contains("in 7 d"),
        "{table}"
    );
    let (json, _) = m.ok(&["ls", "--json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["expiresAt"].as_i64(), Some(at), "{json}");
    // A share made without --expires never expires.
    let (short, _) = m.ok(&["share", SHORT]);
    let (table, _) = m.ok(&["ls"]);
    let line = table
        .lines()
        .find(|l| l.starts_with(&share_id_of(&short)))
        .unwrap();
    assert!(line.contains("never"), "{table}");
    let err = m.fails(&["share", SHORT, "--expires", "soon"]);
    assert!(err.contains("not a duration"), "{err}");
}

#[test]
fn share_presents_the_create_token_from_bshare_token_or_the_flag() {
    let m = Machine::with_server(
        Layout::Sqlite,
        Stores::Embedded,
        &["--create-token", "cli-token-5e2b"],
    );
    let err = m.fails(&["share", SHORT]);
    assert!(err.contains("BSHARE_TOKEN"), "{err}");
    assert!(m.registry().shares.is_empty(), "nothing recorded");
    let err = m.fails(&["share", SHORT, "--token", "not-it"]);
    assert!(err.contains("BSHARE_TOKEN"), "{err}");
    let out = m
        .command(&["share", SHORT])
        .env("BSHARE_TOKEN", "cli-token-5e2b")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", texts(&out).1);
    m.ok(&["share", LONG, "--token", "cli-token-5e2b"]);
    // Re-syncing needs only the share's secret.
    m.ok(&["sync", "--all"]);
}

#[test]
fn ls_into_a_closed_pipe_is_not_an_error() {
    let m = Machine::new(Layout::Sqlite);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = m.command(&["ls"]).stdout(writer).output().unwrap();
    let (_, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn ls_works_without_opencode_data() {
    let m = Machine::new(Layout::JsonTree);
    m.ok(&["share", SHORT]);
    std::fs::remove_dir_all(m.opencode_dir()).unwrap();
    let (table, _) = m.ok(&["ls"]);
    assert!(table.contains("List comprehension vs map"), "{table}");
}

/// The task tool boxes of a page, by their title, each with the subagent conversation nested in
/// it (its `details.subagent` child), if any.
fn task_calls(page: &crate::html::Node) -> Vec<(String, Option<&crate::html::Node>)> {
    page.select("div", "t-task")
        .into_iter()
        .map(|tool| {
            let title = tool
                .select("span", "tt")
                .first()
                .map(|t| t.text())
                .unwrap_or_default();
            let nested = tool
                .elements()
                .find(|n| n.tag == "details" && n.has_class("subagent"));
            (title, nested)
        })
        .collect()
}

/// `bshare share` sends the session's subagents along (OpenCode's own protocol never does), and
/// the page holds the explore subagent's whole conversation, its own tool calls and their output,
/// inside the task call that ran it, collapsed; `bshare sync` sends what the subagent did since.
#[test]
fn share_includes_subagent_sessions_under_their_task_calls() {
    let m = Machine::new(Layout::Sqlite);
    let (link, stderr) = m.ok(&["share", LONG]);
    assert!(stderr.contains("with 1 subagent session"), "{stderr}");
    let id = share_id_of(&link);
    let stored = m.client().document(&id).unwrap();
    assert_eq!(stored.children.len(), 1);
    assert_eq!(stored.children[0].id(), CHILD);
    assert_eq!(stored.children[0].messages, m.local(CHILD).messages);
    assert_eq!(stored.children_omitted, 0);

    let html = crate::support::get(link.trim()).text();
    let page = crate::html::parse(&html);
    let calls = task_calls(&page);
    assert_eq!(calls.len(), 1, "one task call in the session");
    let (title, nested) = &calls[0];
    assert_eq!(title, "Scan for TODO comments");
    let nested = nested.expect("the subagent's conversation inside its task call");
    assert_eq!(nested.attr("open"), None, "collapsed by default");
    assert!(
        nested
            .text()
            .contains("Scan for TODO comments (@explore subagent)")
    );
    // The subagent's messages, its grep call with the call's output, rendered like any tool.
    assert_eq!(nested.select("article", "msg").len(), 3);
    let greps: Vec<_> = nested
        .select("div", "t-search")
        .into_iter()
        .filter(|t| t.select("span", "tn")[0].text() == "grep")
        .collect();
    assert_eq!(greps.len(), 1);
    let output = greps[0].select("pre", "out")[0].text();
    assert!(
        output.contains("/src/cli.py:\n  Line 7: # TODO: support floats"),
        "{output}"
    );
    // Only there: the main conversation has no grep call with that output of its own.
    let everywhere = page
        .select("pre", "out")
        .into_iter()
        .filter(|p| p.text().contains("Line 7: # TODO: support floats"))
        .count();
    assert_eq!(everywhere, 1);

    let md = crate::support::get(&format!("{}.md", link.trim())).text();
    let quoted = md
        .find("> **Subagent conversation: Scan for TODO comments")
        .unwrap();
    assert!(
        md[quoted..].contains(">   Line 7: # TODO: support floats"),
        "{md}"
    );

    // The subagent goes on (as when the task is resumed); a sync sends it.
    m.add_message(CHILD, "and the FIXMEs?");
    let (_, stderr) = m.ok(&["sync", &id]);
    assert!(stderr.contains("with 1 subagent session"), "{stderr}");
    let page = crate::html::parse(&crate::support::get(link.trim()).text());
    let calls = task_calls(&page);
    assert!(calls[0].1.unwrap().text().contains("and the FIXMEs?"));
}

/// On a server whose document limit leaves no room for the subagent, the share is made without
/// it, and both the command and the page say it was left out.
#[test]
fn subagents_that_would_pass_the_server_limit_are_left_out_and_said_so() {
    let probe = Machine::new(Layout::Sqlite);
    let alone = serde_json::to_vec(&probe.local(LONG).into_share_data("abcdefghijkl", 0, 0))
        .unwrap()
        .len();
    let limit = (alone + 600).to_string();
    let m = Machine::with_server(
        Layout::Sqlite,
        Stores::Embedded,
        &["--max-document-bytes", &limit],
    );
    let (link, stderr) = m.ok(&["share", LONG]);
    assert!(
        stderr.contains(
            "without its 1 subagent session, left out to stay within the server's document limit"
        ),
        "{stderr}"
    );
    let stored = m.client().document(&share_id_of(&link)).unwrap();
    assert!(stored.children.is_empty());
    assert_eq!(stored.children_omitted, 1);
    let html = crate::support::get(link.trim()).text();
    assert!(
        html.contains("1 subagent session was left out of this share"),
        "{html:.300}"
    );
    let (_, stderr) = m.ok(&["sync", &share_id_of(&link)]);
    assert!(
        stderr.contains("without its 1 subagent session"),
        "{stderr}"
    );
}

/// A secret a subagent saw is removed like one in the main conversation: the review counts it,
/// the stored document's subagent holds only the placeholder, and a sync redacts what the
/// subagent said since.
#[test]
fn secrets_in_a_subagent_session_are_redacted_before_upload() {
    let m = Machine::new(Layout::Sqlite);
    let secrets = crate::redaction::secrets();
    m.add_message(CHILD, &crate::redaction::session_text());
    let n = secrets.entries.len();

    let (out, _) = m.ok(&["share", LONG, "--dry-run"]);
    assert!(out.contains("with 1 subagent session"), "{out}");
    assert!(
        out.contains(&format!("{n} secrets would be removed")),
        "{out}"
    );
    for (_, secret, _) in &secrets.entries {
        assert!(!out.contains(secret.as_str()), "the review shows {secret}");
    }

    let (link, stderr) = m.ok(&["share", LONG]);
    assert!(stderr.contains("with 1 subagent session"), "{stderr}");
    assert!(
        stderr.contains(&format!("Removed {n} secrets before upload")),
        "{stderr}"
    );
    let id = share_id_of(&link);
    let objects = m.stores.dir.path().join("server/objects/sessions");
    let stored = std::fs::read_to_string(
        objects.join(format!("{}.json", bshare::model::case_safe_stem(&id))),
    )
    .unwrap();
    let doc: ShareData = serde_json::from_str(&stored).unwrap();
    assert_eq!(doc.children.len(), 1);
    let child = serde_json::to_string(&doc.children[0]).unwrap();
    for (rule, secret, _) in &secrets.entries {
        assert!(!stored.contains(secret.as_str()), "stored {rule}: {secret}");
        assert!(
            child.contains(&format!("[REDACTED:{rule}]")),
            "the subagent lacks the placeholder of {rule}"
        );
    }
    assert_eq!(doc.redaction.unwrap().total(), n as u64);
    let page = crate::support::get(link.trim()).text();
    assert!(!page.contains(secrets.entries[0].1.as_str()));
    assert!(page.contains(&format!("{n} secrets were removed before this was shared")));

    // What the subagent says later is redacted on sync too.
    let (rule, secret, line) = &secrets.entries[0];
    m.add_message(CHILD, &format!("once more: {line}"));
    let (_, stderr) = m.ok(&["sync", &id]);
    assert!(stderr.contains("with 1 subagent session"), "{stderr}");
    let stored = std::fs::read_to_string(
        objects.join(format!("{}.json", bshare::model::case_safe_stem(&id))),
    )
    .unwrap();
    assert!(!stored.contains(secret.as_str()), "synced {rule}: {secret}");
    let doc: ShareData = serde_json::from_str(&stored).unwrap();
    assert!(
        serde_json::to_string(&doc.children[0])
            .unwrap()
            .contains(&format!(
                "once more: {}",
                line.replace(secret.as_str(), &format!("[REDACTED:{rule}]"))
            )),
        "{stored:.400}"
    );
}

#[test]
fn sync_uploads_what_changed() {
    for layout in [Layout::Sqlite, Layout::JsonTree] {
        let m = Machine::new(layout);
        let (link, _) = m.ok(&["share", SHORT]);
        let id = share_id_of(&link);
        let before = m.client().document(&id).unwrap();
        m.add_message(SHORT, "one more question");

        let (_, stderr) = m.ok(&["sync", &id[..6]]);
        assert!(stderr.contains(&format!("synced {id}")), "{stderr}");
        let after = m.client().document(&id).unwrap();
        assert_eq!(
            after.messages.len(),
            before.messages.len() + 1,
            "{layout:?}"
        );
        assert_eq!(
            after.messages.last().unwrap().parts[0]["text"],
            "one more question"
        );
        assert_eq!(after.created_at, before.created_at);
        assert!(after.updated_at >= before.updated_at);

        // By link too, and all at once.
        m.ok(&["sync", link.trim()]);
        let (_, stderr) = m.ok(&["sync", "--all"]);
        assert!(stderr.contains(&format!("synced {id}")), "{stderr}");
    }
}

#[test]
fn sync_all_skips_deleted_sessions_and_opencodes_shares() {
    let m = Machine::new(Layout::Sqlite);
    let (short, _) = m.ok(&["share", SHORT]);
    let (long, _) = m.ok(&["share", LONG]);
    m.delete_session(LONG);
    let (_, stderr) = m.ok(&["sync", "--all"]);
    assert!(
        stderr.contains(&format!("synced {}", share_id_of(&short))),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("skipped {}", share_id_of(&long))),
        "{stderr}"
    );
    assert!(
        !stderr.contains("abcd123"),
        "OpenCode's shares are left alone: {stderr}"
    );
    let err = m.fails(&["sync", &share_id_of(&long)]);
    assert!(err.contains("OpenCode no longer has session"), "{err}");
    let err = m.fails(&["sync", "abcd1235"]);
    assert!(err.contains("made by OpenCode"), "{err}");
}

#[test]
fn unshare_takes_the_share_down_even_without_the_session() {
    for layout in [Layout::Sqlite, Layout::JsonTree] {
        let m = Machine::new(layout);
        let (link, _) = m.ok(&["share", LONG]);
        let id = share_id_of(&link);
        m.delete_session(LONG);
        let (_, stderr) = m.ok(&["unshare", &id]);
        assert!(stderr.contains("Took down"), "{stderr}");
        assert!(m.registry().shares.is_empty());
        assert_eq!(http_status(link.trim()), 410, "{layout:?}");
        assert!(m.client().document(&id).is_err());
        let err = m.fails(&["unshare", &id]);
        assert!(err.contains("no share matches"), "{err}");
    }
}

#[test]
fn unshare_of_a_share_the_server_lost_just_forgets_it() {
    let m = Machine::new(Layout::JsonTree);
    let (link, _) = m.ok(&["share", SHORT]);
    let id = share_id_of(&link);
    let secret = m.registry().shares[0].secret.clone();
    m.client().delete(&id, &secret).unwrap();

    let err = m.fails(&["sync", &id]);
    assert!(
        err.contains(&format!("bshare unshare --local-only {id}")),
        "{err}"
    );
    let (_, stderr) = m.ok(&["unshare", &id]);
    assert!(stderr.contains("already gone"), "{stderr}");
    assert!(m.registry().shares.is_empty());
}

#[test]
fn unshare_local_only_never_asks_the_server() {
    let m = Machine::new(Layout::JsonTree);
    let (link, _) = m.ok(&["share", SHORT]);
    let id = share_id_of(&link);
    let (_, stderr) = m.ok(&["unshare", "--local-only", &id]);
    assert!(stderr.contains("Forgot"), "{stderr}");
    assert!(m.registry().shares.is_empty());
    assert_eq!(http_status(link.trim()), 200, "still online");
}

#[test]
fn unshare_takes_down_a_share_opencode_made() {
    let m = Machine::new(Layout::Sqlite);
    // What OpenCode does with `enterprise.url` pointing at this server, recorded as it records it.
    let agent = ureq::Agent::config_builder().build().new_agent();
    let made: Value = agent
        .post(&format!("{}/api/share", m.server.base))
        .send_json(serde_json::json!({ "sessionID": SHORT }))
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    let (id, secret, url) = (
        made["id"].as_str().unwrap(),
        made["secret"].as_str().unwrap(),
        made["url"].as_str().unwrap(),
    );
    let db = rusqlite::Connection::open(m.opencode_dir().join("opencode.db")).unwrap();
    db.execute(
        "UPDATE session_share SET id = ?1, secret = ?2, url = ?3 WHERE session_id = ?4",
        [id, secret, url, SHORT],
    )
    .unwrap();
    drop(db);

    let (table, _) = m.ok(&["ls"]);
    let line = table.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(line.contains("made by OpenCode"), "{table}");
    let err = m.fails(&["unshare", "--local-only", id]);
    assert!(err.contains("/unshare"), "{err}");
    let (_, stderr) = m.ok(&["unshare", url]);
    assert!(
        stderr.contains("Took down") && stderr.contains("/unshare in it"),
        "{stderr}"
    );
    assert_eq!(http_status(url), 410);
}

#[test]
fn wrong_secret_and_unreachable_server_say_what_to_do() {
    let m = Machine::new(Layout::JsonTree);
    let (link, _) = m.ok(&["share", SHORT]);
    let id = share_id_of(&link);
    registry::update(&m.registry_path(), |r| r.shares[0].secret = "wrong".into()).unwrap();
    let err = m.fails(&["sync", &id]);
    assert!(err.contains("secret in your registry"), "{err}");
    let err = m.fails(&["unshare", &id]);
    assert!(err.contains("secret in your registry"), "{err}");

    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let out = m
        .command(&["share", LONG])
        .env("BETTER_SHARE_BASE_URL", &dead)
        .output()
        .unwrap();
    let (_, stderr) = texts(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&dead)
            && stderr.contains("bshare serve")
            && stderr.contains("BETTER_SHARE_BASE_URL"),
        "{stderr}"
    );
}

#[test]
fn too_large_and_rate_limited_say_what_to_do() {
    let m = Machine::with_server(
        Layout::JsonTree,
        Stores::Embedded,
        &["--max-document-bytes", "20000"],
    );
    let err = m.fails(&["share", LONG]);
    assert!(
        err.contains("too large for this server") && err.contains("limit of 20000 bytes"),
        "{err}"
    );
    assert!(m.registry().shares.is_empty(), "nothing recorded");

    let m = Machine::with_server(Layout::JsonTree, Stores::Embedded, &["--create-limit", "1"]);
    m.ok(&["share", SHORT]);
    let err = m.fails(&["share", LONG]);
    assert!(
        err.contains("rate-limiting") && err.contains("try again in"),
        "{err}"
    );
    assert!(
        !err.contains("a minute"),
        "uses the server's Retry-After: {err}"
    );
}

#[test]
fn open_prints_or_opens_the_link() {
    let m = Machine::new(Layout::JsonTree);
    let (link, _) = m.ok(&["share", SHORT]);
    let id = share_id_of(&link);
    let (printed, _) = m.ok(&["open", &id[..5]]);
    assert_eq!(printed, link);

    let opened = m.tmp.path().join("opened.txt");
    let script = m.tmp.path().join("open.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$1\" > '{}'\n", opened.display()),
    )
    .unwrap();
    make_executable(&script);
    let out = m
        .command(&["open", &id])
        .env("BSHARE_OPENER", &script)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&opened).unwrap(), link);
}

#[test]
fn ambiguous_share_prefix_lists_the_candidates() {
    let m = Machine::new(Layout::JsonTree);
    registry::update(&m.registry_path(), |r| {
        for id in ["abcdAAAA1111", "abcdBBBB2222"] {
            r.upsert(registry::Entry {
                share_id: id.into(),
                session_id: SHORT.into(),
                secret: "s".into(),
                url: format!("{}/share/{id}", m.server.base),
                server: m.server.base.clone(),
                title: format!("title {id}"),
                created_at: 1,
                updated_at: 1,
                extra: serde_json::Map::new(),
            });
        }
    })
    .unwrap();
    let err = m.fails(&["open", "abcd"]);
    assert!(
        err.contains("several shares")
            && err.contains("abcdAAAA1111")
            && err.contains("abcdBBBB2222"),
        "{err}"
    );
    let (printed, _) = m.ok(&["open", "abcdB"]);
    assert!(printed.contains("abcdBBBB2222"));
}

#[test]
fn every_subcommand_explains_itself() {
    let m = Machine::new(Layout::JsonTree);
    for (cmd, phrase) in [
        ("sessions", "List OpenCode's sessions"),
        ("share", "Share an OpenCode session"),
        ("ls", "List your shares"),
        ("sync", "Upload the current state"),
        ("unshare", "Take a share down"),
        ("open", "Open a share's page"),
    ] {
        let (help, _) = m.ok(&[cmd, "--help"]);
        assert!(help.contains(phrase), "{cmd}: {help}");
        assert!(help.contains("--opencode-dir"), "{cmd}: {help}");
    }
}

#[cfg(unix)]
fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A session holding one secret of each family: `--dry-run` lists each finding masked and leaves
/// the server empty; `share` removes them all from the stored object and every page variant, and
/// `--no-redact` uploads them as they are, with a warning.
#[test]
fn share_removes_every_family_of_secret_and_dry_run_creates_nothing() {
    let m = Machine::new(Layout::JsonTree);
    let session_id = "ses_secretsOfEachFamily0001";
    let mut doc = fixture("short");
    doc.session["id"] = session_id.into();
    doc.session["title"] = "Deploy with all my keys".into();
    doc.session["directory"] = m.project().to_str().unwrap().into();
    for msg in &mut doc.messages {
        msg.info["sessionID"] = session_id.into();
        for p in &mut msg.parts {
            p["sessionID"] = session_id.into();
        }
    }
    doc.messages[0].parts[0]["text"] = crate::redaction::session_text().into();
    bshare::opencode::json_tree::write_session(
        &m.opencode_dir().join("storage"),
        &doc.session,
        &doc.messages,
    )
    .unwrap();
    let secrets = crate::redaction::secrets();
    let objects = m.stores.dir.path().join("server/objects/sessions");
    let stored_objects = || std::fs::read_dir(&objects).map_or(0, Iterator::count);

    let (out, _) = m.ok(&["share", session_id, "--dry-run"]);
    assert!(
        out.contains(&format!("to {} (a new share)", m.server.base)),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{} secrets would be removed",
            secrets.entries.len()
        )),
        "{out}"
    );
    assert!(out.contains("Nothing was uploaded"), "{out}");
    for (rule, secret, _) in &secrets.entries {
        assert!(
            out.contains(rule.as_str()),
            "{rule} missing from the review:\n{out}"
        );
        assert!(!out.contains(secret.as_str()), "the review shows {secret}");
    }
    assert!(out.contains("message 1") && out.contains("sk-p…["), "{out}");
    assert_eq!(stored_objects(), 0, "a dry run stored a document");
    assert!(m.registry().shares.is_empty(), "a dry run recorded a share");

    let (link, stderr) = m.ok(&["share", session_id]);
    assert!(
        stderr.contains(&format!(
            "Removed {} secrets before upload",
            secrets.entries.len()
        )),
        "{stderr}"
    );
    let id = share_id_of(&link);
    let stored =
        std::fs::read(objects.join(format!("{}.json", bshare::model::case_safe_stem(&id))))
            .unwrap();
    crate::redaction::assert_redacted_everywhere(
        &m.server,
        &id,
        &stored,
        secrets.entries.len() as u64,
    );

    // The explicit opt-out uploads the session as it is, and says so.
    let (_, stderr) = m.ok(&["sync", &id, "--no-redact"]);
    assert!(stderr.contains("warning: --no-redact"), "{stderr}");
    let stored = std::fs::read_to_string(
        objects.join(format!("{}.json", bshare::model::case_safe_stem(&id))),
    )
    .unwrap();
    assert!(stored.contains(&secrets.entries[0].1));
}
