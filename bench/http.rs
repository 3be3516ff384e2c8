//! One HTTP/1.1 request on a fresh connection, for the benchmarks that drive `bshare serve`
//! (shared by `server.rs` and `soak.rs` through `#[path]`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `method path` with `headers` (each ending in CRLF) and `body`; (status, body) of the answer,
/// `None` when the connection fails or the answer is not HTTP.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let end = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = std::str::from_utf8(out.get(9..12)?).ok()?.parse().ok()?;
    Some((status, out[end + 4..].to_vec()))
}
