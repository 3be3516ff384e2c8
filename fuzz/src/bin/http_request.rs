//! Request heads and routing: any bytes sent to a real `bshare serve` (the embedded default, in
//! this process, so the fuzzer sees the edge's and the handlers' coverage) over a real socket.
//!
//! Besides not panicking: no answer is a 5xx, and the server answers `/healthz` afterwards.
#![no_main]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

/// The server, kept in a static for the whole run (reachable, so not a leak).
struct Served {
    running: bshare::http::server::Running,
    _dir: tempfile::TempDir,
}

fn server() -> SocketAddr {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut config = bshare::config::ServerConfig::embedded(dir.path());
            config.request_limit_per_minute = u32::MAX;
            config.create_limit_per_hour = u32::MAX;
            let running = bshare::http::server::start(config).expect("start bshare serve");
            Served { running, _dir: dir }
        })
        .running
        .addr
}

/// The status of the first response in `bytes`, if there is one.
fn first_status(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"HTTP/1.1 ")?;
    std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()
}

fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = stream.write_all(bytes);
    // The end of the input is the end of the request: the server sees EOF, not a slow client.
    let _ = stream.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let addr = server();
    let out = exchange(addr, data);
    if let Some(status) = first_status(&out) {
        assert!(
            status < 500,
            "{status} for {:?}: {:?}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&out)
        );
    }
    let alive = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n");
    assert_eq!(first_status(&alive), Some(200), "the server stopped answering");
});
