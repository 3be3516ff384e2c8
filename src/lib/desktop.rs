//! The user's desktop: putting a link on the clipboard and opening it in a browser.
//!
//! Both go through whatever the platform offers, first found wins. `BSHARE_CLIPBOARD` and
//! `BSHARE_OPENER` name a program to use instead (it gets the link on stdin, resp. as its
//! argument); an empty `BSHARE_OPENER` means "never open, just print".

use std::io::{self, IsTerminal, Write};
use std::process::{Command, Stdio};

pub const CLIPBOARD_ENV: &str = "BSHARE_CLIPBOARD";
pub const OPENER_ENV: &str = "BSHARE_OPENER";

/// How a link reached the clipboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Copied {
    /// Through this program.
    Program(String),
    /// Through an OSC 52 escape sequence written to the terminal, which the terminal may ignore.
    Osc52,
}

/// Put `text` on the clipboard. Fails only when no way at all was found.
pub fn copy_to_clipboard(text: &str) -> io::Result<Copied> {
    for (program, args) in clipboard_programs() {
        if pipe_to(&program, &args, text).is_ok() {
            return Ok(Copied::Program(program));
        }
    }
    // Over SSH or in a bare console no program reaches the user's clipboard, but the terminal can.
    let mut stderr = io::stderr();
    if stderr.is_terminal() {
        write!(stderr, "{}", osc52(text))?;
        stderr.flush()?;
        return Ok(Copied::Osc52);
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "found no clipboard program (wl-copy, xclip, xsel, pbcopy, clip.exe) and stderr is not a terminal",
    ))
}

fn clipboard_programs() -> Vec<(String, Vec<&'static str>)> {
    if let Some(program) = std::env::var_os(CLIPBOARD_ENV).filter(|v| !v.is_empty()) {
        return vec![(program.to_string_lossy().into_owned(), vec![])];
    }
    let mut out: Vec<(String, Vec<&'static str>)> = Vec::new();
    let has = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    if cfg!(target_os = "macos") {
        out.push(("pbcopy".into(), vec![]));
    }
    if has("WAYLAND_DISPLAY") {
        out.push(("wl-copy".into(), vec![]));
    }
    if has("DISPLAY") {
        out.push(("xclip".into(), vec!["-selection", "clipboard"]));
        out.push(("xsel".into(), vec!["--clipboard", "--input"]));
    }
    // Windows, and WSL, where Windows programs are on the PATH.
    out.push(("clip.exe".into(), vec![]));
    out
}

fn pipe_to(program: &str, args: &[&str], text: &str) -> io::Result<()> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes())?;
    }
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("{program} failed: {status}")))
    }
}

/// The OSC 52 sequence that asks the terminal to set its clipboard.
pub fn osc52(text: &str) -> String {
    format!("\x1b]52;c;{}\x07", base64_standard(text.as_bytes()))
}

fn base64_standard(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Open `url` in the user's browser. `Ok(false)` when there is nothing to open it with, so the
/// caller prints it instead.
pub fn open_url(url: &str) -> io::Result<bool> {
    let openers: Vec<(String, Vec<&str>)> = match std::env::var_os(OPENER_ENV) {
        Some(v) if v.is_empty() => return Ok(false),
        Some(v) => vec![(v.to_string_lossy().into_owned(), vec![])],
        None if cfg!(target_os = "macos") => vec![("open".into(), vec![])],
        None if cfg!(windows) => vec![("explorer.exe".into(), vec![])],
        None => vec![
            ("xdg-open".into(), vec![]),
            ("wslview".into(), vec![]),
            ("explorer.exe".into(), vec![]),
        ],
    };
    for (program, args) in openers {
        let status = Command::new(&program)
            .args(args)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => return Ok(true),
            // Not installed, or no browser behind it: try the next one.
            _ => {}
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_wraps_base64() {
        assert_eq!(osc52("hi"), "\x1b]52;c;aGk=\x07");
    }
}
