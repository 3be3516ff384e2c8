//! A scripted OpenAI-compatible model server, so the real OpenCode can run sessions with no network.
//!
//! `POST /v1/chat/completions` with `stream: true` is answered with server-sent events in the shape
//! of OpenAI's chat completion chunks. What the model "says" follows from the last message:
//! - a title request (OpenCode asks for one per session) gets [`TITLE`];
//! - a user message containing `RUN: <command>` gets a `bash` tool call running that command;
//! - a tool result gets `The command printed: <output>`;
//! - anything else gets `Answer to: <the user's text>`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

pub const TITLE: &str = "Fake session title";

pub struct FakeModel {
    /// `http://127.0.0.1:<port>/v1`, OpenCode's `baseURL` for the provider.
    pub base_url: String,
    port: u16,
    requests: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
}

impl FakeModel {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake model server");
        let port = listener.local_addr().expect("local address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopping) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    if let Err(e) = serve(stream, &log) {
                        eprintln!("fake model: {e}");
                    }
                });
            }
        });
        Self {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            port,
            requests,
            stop,
        }
    }

    /// Every chat completion request received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// What the model answers to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Text(String),
    Bash { command: String },
}

/// The script: the reply to a chat completion request.
pub fn reply_to(request: &Value) -> Reply {
    let messages = request["messages"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let is_title = messages
        .iter()
        .any(|m| m["role"] == "system" && text_of(&m["content"]).contains("title generator"));
    if is_title {
        return Reply::Text(TITLE.to_owned());
    }
    let Some(last) = messages.last() else {
        return Reply::Text("Answer to: nothing".to_owned());
    };
    if last["role"] == "tool" {
        return Reply::Text(format!(
            "The command printed: {}",
            text_of(&last["content"]).trim()
        ));
    }
    let text = text_of(&last["content"]);
    let has_tools = request["tools"].as_array().is_some_and(|t| !t.is_empty());
    if let Some(command) = text.split("RUN: ").nth(1).filter(|_| has_tools) {
        let command = command.lines().next().unwrap_or("").trim().to_owned();
        return Reply::Bash { command };
    }
    // OpenCode may append reminders after the user's words; answer the first line.
    let first = text.lines().next().unwrap_or("").trim();
    Reply::Text(format!("Answer to: {first}"))
}

/// A message's content: a string, or a list of parts whose text parts are joined.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The SSE chunks of one reply, as OpenAI streams them.
fn chunks(reply: &Reply) -> Vec<Value> {
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
            "model": "m1",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let mut out = Vec::new();
    match reply {
        Reply::Text(text) => {
            // Two pieces, so OpenCode sees a streamed text grow.
            let mid = text
                .char_indices()
                .nth(text.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            out.push(chunk(
                json!({"role": "assistant", "content": &text[..mid]}),
                Value::Null,
            ));
            out.push(chunk(json!({"content": &text[mid..]}), Value::Null));
            out.push(chunk(json!({}), json!("stop")));
        }
        Reply::Bash { command } => {
            let arguments = json!({"command": command, "description": "Run the requested command"});
            out.push(chunk(
                json!({"role": "assistant", "tool_calls": [{
                    "index": 0, "id": "call_fake_1", "type": "function",
                    "function": {"name": "bash", "arguments": ""},
                }]}),
                Value::Null,
            ));
            out.push(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": arguments.to_string()}}]}),
                Value::Null,
            ));
            out.push(chunk(json!({}), json!("tool_calls")));
        }
    }
    out.push(json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": "m1",
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    }));
    out
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Value>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut content_length = 0usize;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked") {
            chunked = true;
        }
    }
    let body = if chunked {
        read_chunked(&mut reader)?
    } else {
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body)?;
        body
    };
    let mut out = stream;
    let mut words = request_line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "POST" || !path.ends_with("/chat/completions") {
        let message =
            format!("the fake model only answers POST /v1/chat/completions, not {method} {path}");
        write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{message}",
            message.len()
        )?;
        return out.flush();
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    log.lock().unwrap().push(request.clone());
    let reply = reply_to(&request);
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
    )?;
    for chunk in chunks(&reply) {
        write!(out, "data: {chunk}\n\n")?;
        out.flush()?;
    }
    out.write_all(b"data: [DONE]\n\n")?;
    out.flush()
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size_hex = size_line.trim().split(';').next().unwrap_or("0");
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if size == 0 {
            // The trailer ends with an empty line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let mut piece = vec![0; size + 2];
        reader.read_exact(&mut piece)?;
        piece.truncate(size);
        body.extend_from_slice(&piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_answers_titles_prompts_commands_and_tool_results() {
        let title = json!({"messages": [
            {"role": "system", "content": "You are a title generator. You output ONLY a thread title."},
            {"role": "user", "content": "hello"},
        ]});
        assert_eq!(reply_to(&title), Reply::Text(TITLE.into()));
        let prompt = json!({"tools": [{"type": "function"}], "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Say hi\n<system-reminder>x</system-reminder>"}]},
        ]});
        assert_eq!(reply_to(&prompt), Reply::Text("Answer to: Say hi".into()));
        let run = json!({"tools": [{"type": "function"}], "messages": [
            {"role": "user", "content": "Please RUN: echo hi"},
        ]});
        assert_eq!(
            reply_to(&run),
            Reply::Bash {
                command: "echo hi".into()
            }
        );
        let result = json!({"messages": [{"role": "tool", "content": "hi\n"}]});
        assert_eq!(
            reply_to(&result),
            Reply::Text("The command printed: hi".into())
        );
    }

    #[test]
    fn it_streams_a_reply_over_http() {
        let model = FakeModel::start();
        let response = crate::support::post_json(
            &format!("{}/chat/completions", model.base_url),
            &json!({"stream": true, "messages": [{"role": "user", "content": "ping"}]}),
        );
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("text/event-stream"));
        let text = response.text();
        let content: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(content, "Answer to: ping");
        assert!(text.ends_with("data: [DONE]\n\n"));
        assert_eq!(model.requests().len(), 1);
    }
}
