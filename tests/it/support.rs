//! Test harness: real services for the integration suite.
//!
//! - PostgreSQL: a fresh database per test, created through `BSHARE_TEST_DATABASE_URL` (the test
//!   command provisions a throwaway cluster or uses the one you name); `PgCluster` starts a private
//!   cluster for tests that stop and start the database.
//! - S3: a private `s3s-fs` (a signature-checking S3 server) per test, from `BSHARE_TEST_S3S_FS` or
//!   `PATH`.
//! - bshare: the real binary, `bshare serve` on a free port, its log captured.
//!
//! Nothing is skipped: a missing service is a failure that says how to get it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_bshare");

/// Which store pair a server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stores {
    /// SQLite + local disk: the embedded default.
    Embedded,
    /// PostgreSQL + an S3-compatible bucket.
    PostgresS3,
}

/// A file from `tests/data`.
pub fn data_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn read_data(name: &str) -> Vec<u8> {
    std::fs::read(data_file(name)).unwrap_or_else(|e| panic!("cannot read tests/data/{name}: {e}"))
}

fn random_suffix() -> String {
    bshare::crypto::random_hex(6)
}

/// A TCP port that was free a moment ago. Another process may take it before the caller binds
/// it: servers that can bind port 0 themselves are started that way instead, and whoever binds a
/// port from here retries with another one on a clash (`PgCluster::start`).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A database of its own for one test, dropped afterwards.
pub struct PgDb {
    admin_url: String,
    pub name: String,
    pub url: String,
}

fn admin_url() -> String {
    std::env::var("BSHARE_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "BSHARE_TEST_DATABASE_URL is not set. Run the tests with `scripts/test`, which starts a \
             throwaway PostgreSQL (or set BSHARE_TEST_DATABASE_URL to a server where the test user \
             may CREATE DATABASE, e.g. postgres://postgres@127.0.0.1:5432/postgres)."
        )
    })
}

/// Replace the database name in a postgres:// URL.
pub fn with_dbname(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

impl PgDb {
    pub fn create() -> Self {
        Self::create_on(&admin_url())
    }

    pub fn create_on(admin_url: &str) -> Self {
        let name = format!("bshare_t_{}", random_suffix());
        let mut client =
            postgres::Client::connect(admin_url, postgres::NoTls).unwrap_or_else(|e| {
                panic!("cannot connect to the test PostgreSQL at {admin_url}: {e}")
            });
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        Self {
            admin_url: admin_url.to_owned(),
            url: with_dbname(admin_url, &name),
            name,
        }
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to test database")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A private PostgreSQL cluster (initdb + pg_ctl) that a test may stop and start.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    run_as: Option<String>,
}

fn pg_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("BSHARE_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    panic!(
        "cannot find PostgreSQL's initdb and pg_ctl: install PostgreSQL (Debian: postgresql) or set \
         BSHARE_TEST_PG_BIN to the directory holding them"
    );
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PgCluster {
    pub fn start() -> Self {
        let mut cluster = Self::init();
        cluster.start_on_a_free_port();
        cluster
    }

    /// A cluster that also speaks TLS, with this certificate and key (PEM files).
    pub fn start_tls(cert: &Path, key: &Path) -> Self {
        let mut cluster = Self::init();
        let data = PathBuf::from(cluster.data_dir());
        std::fs::copy(cert, data.join("server.crt")).expect("copy the certificate");
        std::fs::copy(key, data.join("server.key")).expect("copy the key");
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("postgresql.conf");
        std::io::Write::write_all(&mut conf, b"\nssl = on\n").expect("write postgresql.conf");
        let mut fix = vec![
            Command::new("chmod")
                .arg("600")
                .arg(data.join("server.key"))
                .status(),
        ];
        if let Some(user) = &cluster.run_as {
            fix.push(
                Command::new("chown")
                    .arg(format!("{user}:{user}"))
                    .arg(data.join("server.crt"))
                    .arg(data.join("server.key"))
                    .status(),
            );
        }
        assert!(fix.into_iter().all(|s| s.is_ok_and(|s| s.success())));
        cluster.start_on_a_free_port();
        cluster
    }

    fn init() -> Self {
        let bin = pg_bin_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        // PostgreSQL refuses to run as root; the test command runs as root in CI.
        let run_as = running_as_root().then(|| "postgres".to_owned());
        if run_as.is_some() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "cannot chown the cluster directory to the postgres user"
            );
            // The temp dir's parent must be traversable by that user.
            let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
        }
        let cluster = Self {
            dir,
            bin,
            port: free_port(),
            run_as,
        };
        let data = cluster.data_dir();
        cluster.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster
    }

    /// The first start. PostgreSQL cannot bind port 0 and name its port: when another process
    /// took the port between free_port() and the start, try another.
    fn start_on_a_free_port(&mut self) {
        for _ in 0..5 {
            match self.try_start() {
                Ok(()) => return,
                Err(log) if log.contains("Address already in use") => self.port = free_port(),
                Err(log) => panic!("PostgreSQL did not start:\n{log}"),
            }
        }
        panic!("PostgreSQL found no free port in 5 tries");
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        if let Err(out) = self.pg_status(tool, args) {
            panic!("{tool} failed: {out}");
        }
    }

    /// Run a PostgreSQL tool (as the postgres user when we are root); its output on failure.
    fn pg_status(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .current_dir("/")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn stop(&self) {
        self.pg(
            "pg_ctl",
            &["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"],
        );
    }

    /// Start the stopped cluster again on its port.
    pub fn start_again(&self) {
        if let Err(log) = self.try_start() {
            panic!(
                "PostgreSQL did not start again on port {}:\n{log}",
                self.port
            );
        }
    }

    /// `pg_ctl start`; on failure, what the server logged.
    fn try_start(&self) -> Result<(), String> {
        let log = self.dir.path().join("log").display().to_string();
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off",
            self.port
        );
        let started = self.pg_status(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir(),
                "-l",
                &log,
                "-o",
                &opts,
                "-w",
                "start",
            ],
        );
        match started {
            Ok(()) => Ok(()),
            Err(out) => Err(format!(
                "{out}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )),
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.pg_quiet_stop();
    }
}

impl PgCluster {
    fn pg_quiet_stop(&self) -> std::io::Result<()> {
        let exe = self.bin.join("pg_ctl");
        let data = self.data_dir();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        match &self.run_as {
            Some(user) => Command::new("runuser")
                .args(["-u", user, "--"])
                .arg(&exe)
                .args(args)
                .output()
                .map(|_| ()),
            None => Command::new(&exe).args(args).output().map(|_| ()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// S3

/// A private `s3s-fs` with one bucket.
pub struct S3Server {
    child: Child,
    _root: tempfile::TempDir,
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub port: u16,
    pub root: PathBuf,
    /// Domain names for virtual-hosted-style requests (`bucket.domain`), if any.
    domains: Vec<String>,
}

fn s3s_fs_path() -> PathBuf {
    if let Ok(p) = std::env::var("BSHARE_TEST_S3S_FS") {
        return PathBuf::from(p);
    }
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("s3s-fs"))
            .find(|p| p.exists())
    }) {
        return found;
    }
    panic!(
        "s3s-fs (a signature-checking S3 server) is not installed. Run the tests with `scripts/test`, \
         or install it: cargo install s3s-fs --version 0.14.1 --features binary --locked"
    );
}

impl S3Server {
    pub fn start() -> Self {
        Self::start_inner(false)
    }

    /// s3s-fs that also answers virtual-hosted-style requests for `bucket.localhost:PORT`.
    pub fn start_virtual_host() -> Self {
        Self::start_inner(true)
    }

    fn start_inner(virtual_host: bool) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let bucket = "bshare-test".to_owned();
        std::fs::create_dir_all(root.path().join(&bucket)).expect("bucket dir");
        let access_key = format!("AK{}", random_suffix());
        let secret_key = format!("SK{}", random_suffix());
        let (child, port, domains) = if virtual_host {
            // s3s-fs matches the Host header, port included, against its domain: the port must
            // be known before it starts. Another one is tried if it was taken meanwhile.
            let mut tries = 0;
            loop {
                let port = free_port();
                let domains = vec![format!("localhost:{port}")];
                match spawn_s3s_fs(port, &access_key, &secret_key, root.path(), &domains) {
                    Ok((child, port)) => break (child, port, domains),
                    Err(e) if tries < 5 => {
                        tries += 1;
                        eprintln!("s3s-fs did not start on port {port} ({e}); trying another");
                    }
                    Err(e) => panic!("s3s-fs did not start: {e}"),
                }
            }
        } else {
            // Port 0: s3s-fs binds a free port itself and names it (no other process can take
            // it in between).
            let (child, port) = spawn_s3s_fs(0, &access_key, &secret_key, root.path(), &[])
                .unwrap_or_else(|e| panic!("s3s-fs did not start: {e}"));
            (child, port, Vec::new())
        };
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket,
            access_key,
            secret_key,
            port,
            root: root.path().to_owned(),
            _root: root,
            domains,
        }
    }

    /// Stop answering (for outage tests); `restart` brings it back on the same port and data.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self) {
        // The servers under test know this port; should another process hold it for a moment,
        // try again.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match spawn_s3s_fs(
                self.port,
                &self.access_key,
                &self.secret_key,
                &self.root,
                &self.domains,
            ) {
                Ok((child, _)) => {
                    self.child = child;
                    return;
                }
                Err(e) if Instant::now() < deadline => {
                    eprintln!("s3s-fs did not start again ({e}); retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("s3s-fs did not start again on port {}: {e}", self.port),
            }
        }
    }

    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.join(&self.bucket).join(key)
    }
}

/// Start s3s-fs on `port` (0: any) and wait for the line naming the address it listens on.
fn spawn_s3s_fs(
    port: u16,
    access_key: &str,
    secret_key: &str,
    root: &Path,
    domains: &[String],
) -> Result<(Child, u16), String> {
    let mut child = Command::new(s3s_fs_path())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", access_key, "--secret-key", secret_key])
        .args(domains.iter().flat_map(|d| ["--domain", d.as_str()]))
        .arg(root)
        .env("RUST_LOG", "s3s_fs=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run s3s-fs: {e}"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        // Read to the end: s3s-fs must never block on a full pipe.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("server is running at http://127.0.0.1:").nth(1) {
                let _ = tx.send(rest.trim().parse::<u16>().ok());
            }
        }
        let _ = tx.send(None);
    });
    let errors = Arc::new(Mutex::new(String::new()));
    let seen = Arc::clone(&errors);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            seen.lock().unwrap().push_str(&line);
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Some(port)) => Ok((child, port)),
        outcome => {
            let _ = child.kill();
            let _ = child.wait();
            // Let the stderr reader catch up with what s3s-fs said before it went.
            std::thread::sleep(Duration::from_millis(50));
            let why = if outcome.is_err() {
                "it named no address within 20 s"
            } else {
                "it exited"
            };
            Err(format!("{why}: {}", errors.lock().unwrap()))
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// bshare serve

/// Stores for one or more servers of a test.
pub struct Env {
    pub stores: Stores,
    pub dir: tempfile::TempDir,
    pub pg: Option<PgDb>,
    pub s3: Option<S3Server>,
}

impl Env {
    pub fn new(stores: Stores) -> Self {
        let (pg, s3) = match stores {
            Stores::Embedded => (None, None),
            Stores::PostgresS3 => (Some(PgDb::create()), Some(S3Server::start())),
        };
        Self {
            stores,
            dir: tempfile::tempdir().expect("tempdir"),
            pg,
            s3,
        }
    }

    /// The environment variables that point `bshare serve` at this test's stores.
    pub fn server_env(&self) -> Vec<(String, String)> {
        let mut env = vec![(
            "BSHARE_DATA_DIR".to_owned(),
            self.dir.path().join("server").display().to_string(),
        )];
        if let Some(pg) = &self.pg {
            env.push(("DATABASE_URL".into(), pg.url.clone()));
        }
        if let Some(s3) = &self.s3 {
            env.extend([
                ("S3_BUCKET".into(), s3.bucket.clone()),
                ("S3_ENDPOINT".into(), s3.endpoint.clone()),
                ("S3_REGION".into(), "us-east-1".into()),
                ("S3_ACCESS_KEY_ID".into(), s3.access_key.clone()),
                ("S3_SECRET_ACCESS_KEY".into(), s3.secret_key.clone()),
            ]);
        }
        env
    }

    /// Start `bshare serve` on these stores with default limits raised for tests
    /// (`extra` may lower them again, e.g. `--create-limit 3`).
    pub fn server(&self, extra: &[&str]) -> Server {
        Server::start(&self.server_env(), extra)
    }

    /// Start `bshare serve` under a shell that first lowers the descriptor limit to `nofile`.
    pub fn server_with_nofile(&self, nofile: u32, extra: &[&str]) -> Server {
        Server::start_with(&self.server_env(), extra, Some(nofile))
    }
}

/// A running `bshare serve`.
pub struct Server {
    child: Child,
    pub base: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Start the binary; waits for its "listening on" line.
    pub fn start(env: &[(String, String)], extra: &[&str]) -> Self {
        Self::start_with(env, extra, None)
    }

    fn start_with(env: &[(String, String)], extra: &[&str], nofile: Option<u32>) -> Self {
        let mut cmd = match nofile {
            None => Command::new(BIN),
            Some(n) => {
                // `exec` keeps the pid: the child is the server itself.
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), BIN]);
                sh
            }
        };
        cmd.arg("serve");
        if !extra.contains(&"--bind") {
            cmd.args(["--bind", "127.0.0.1:0"]);
        }
        cmd.args(extra)
            .env("BSHARE_WORKERS", "8")
            // Tests make many shares from one address; a test that checks the limits lowers them.
            .env("BSHARE_CREATE_LIMIT", "100000")
            .env("BSHARE_REQUEST_LIMIT", "100000")
            .env("BSHARE_PAGE_MISS_LIMIT", "100000");
        for key in [
            "DATABASE_URL",
            "S3_BUCKET",
            "S3_ENDPOINT",
            "BASE_URL",
            "BSHARE_BIND",
            "BSHARE_DATA_DIR",
        ] {
            cmd.env_remove(key);
        }
        cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start bshare serve");
        let stderr = child.stderr.take().expect("stderr");
        let stdout = child.stdout.take().expect("stdout");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(stderr) as Box<dyn std::io::Read + Send>,
            Box::new(stdout),
        ] {
            let logs = Arc::clone(&logs);
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        let base = rest.split_whitespace().next().unwrap_or("").to_owned();
                        let _ = tx.send(Ok(base));
                    }
                    logs.lock().unwrap().push(line);
                }
                let _ = tx.send(Err(()));
            });
        }
        drop(tx);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Ok(base)) => {
                    return Self { child, base, logs };
                }
                Ok(Err(())) => {
                    // One stream closed: the server may have exited. Wait for the other.
                    if let Ok(Some(status)) = child.try_wait() {
                        std::thread::sleep(Duration::from_millis(100));
                        panic!(
                            "bshare serve exited ({status}) before listening:\n{}",
                            logs.lock().unwrap().join("\n")
                        );
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait();
                    panic!(
                        "bshare serve exited ({status:?}) before listening:\n{}",
                        logs.lock().unwrap().join("\n")
                    );
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    panic!(
                        "bshare serve did not start within 30 s:\n{}",
                        logs.lock().unwrap().join("\n")
                    );
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// Send a signal (`TERM`, `INT`) to the server.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Wait up to `timeout` for the server to exit; its status when it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Open descriptors and threads of the server process, from /proc.
    pub fn fds_and_threads(&self) -> (usize, usize) {
        let pid = self.pid();
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
        let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:"))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0);
        (fds, threads)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response {} is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .build()
        .into()
}

/// One HTTP request; the status is returned, never turned into an error. Transport failures
/// (connection refused) come back as status 0.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
    http_within(Duration::from_secs(30), method, url, headers, body)
}

/// `http` with a longer wait, for calls that do real work on the other side (OpenCode running a
/// prompt through its model loop on a busy machine).
pub fn http_within(
    timeout: Duration,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    let agent = agent(timeout);
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    let request = builder.body(body.map(<[u8]>::to_vec).unwrap_or_default());
    let result = request
        .map_err(|e| e.to_string())
        .and_then(|r| agent.run(r).map_err(|e| e.to_string()));
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            let body = response
                .body_mut()
                .with_config()
                .limit(200 * 1024 * 1024)
                .read_to_vec()
                .unwrap_or_default();
            Resp {
                status,
                headers,
                body,
            }
        }
        Err(e) => Resp {
            status: 0,
            headers: Vec::new(),
            body: e.into_bytes(),
        },
    }
}

/// A GET over a raw socket, for what an HTTP client library would hide (compression): returns the
/// status line and headers as text, and the body bytes as sent.
pub fn raw_get(url: &str, headers: &[(&str, &str)]) -> (String, Vec<u8>) {
    raw_request("GET", url, headers)
}

/// A request over a raw socket with `Connection: close`: the head as text and every byte the
/// server sent after it (for a HEAD, what a client library would not read).
pub fn raw_request(method: &str, url: &str, headers: &[(&str, &str)]) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (n, v) in headers {
        request.push_str(&format!("{n}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("read");
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    (
        String::from_utf8_lossy(&all[..split]).into_owned(),
        all[split + 4..].to_vec(),
    )
}

pub fn get(url: &str) -> Resp {
    http("GET", url, &[], None)
}

pub fn post_json(url: &str, body: &serde_json::Value) -> Resp {
    http(
        "POST",
        url,
        &[("Content-Type", "application/json")],
        Some(body.to_string().as_bytes()),
    )
}

/// Create a share through the presign API (declaring `size`, or 2 bytes); panics unless 201.
pub fn create_share(
    server: &Server,
    share_id: Option<&str>,
    size: Option<usize>,
) -> serde_json::Value {
    let mut body = serde_json::json!({ "sessionId": "ses_test" });
    if let Some(id) = share_id {
        body["shareId"] = id.into();
    }
    // An S3 bucket needs the size to bind the upload URL's length; a share that is never
    // uploaded declares a tiny one.
    body["size"] = size.unwrap_or(2).into();
    let r = post_json(&server.url("/api/share/presign"), &body);
    assert_eq!(r.status, 201, "create: {}", r.text());
    r.json()
}

/// Server arguments for tests that outwait their upload URLs. S3 signs to the second, so a URL of
/// n seconds may live only n - 1: three leave an upload two on a loaded machine.
pub const SHORT_UPLOAD_URLS: [&str; 2] = ["--upload-url-ttl", "3"];

/// Sleep until the upload URLs of a server run with `SHORT_UPLOAD_URLS`, issued with `expires_at`
/// (epoch ms), are dead and an upload begun with one has had as long again: a page cached from
/// then on is served without looking at the object.
pub fn wait_past_upload_window(expires_at: i64) {
    let lifetime: i64 = SHORT_UPLOAD_URLS[1].parse().unwrap();
    let left = expires_at + lifetime * 1000 + 200 - bshare::model::now_millis();
    if left > 0 {
        std::thread::sleep(Duration::from_millis(left as u64));
    }
}

/// PUT a document to a presigned URL.
pub fn upload(presigned_url: &str, bytes: &[u8]) -> Resp {
    http(
        "PUT",
        presigned_url,
        &[("Content-Type", "application/json")],
        Some(bytes),
    )
}

/// Create a share and upload `bytes` to it; returns the create answer.
pub fn share_document(server: &Server, bytes: &[u8]) -> serde_json::Value {
    let created = create_share(server, None, Some(bytes.len()));
    let r = upload(created["presignedUrl"].as_str().unwrap(), bytes);
    assert_eq!(r.status, 200, "upload: {}", r.text());
    created
}

/// Sets its flag when dropped: loops of client threads in a `thread::scope` stop however the
/// scope ends, a failed check included (else the scope would wait for them forever).
pub struct StopOnDrop<'a>(pub &'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Poll `check` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
