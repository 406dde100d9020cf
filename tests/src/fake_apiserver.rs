//! The fake Kubernetes API server (`tests/fake/apiserver.py`, the real list/watch wire
//! protocol) as a child process on loopback, and the test's handle to change its objects.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

#[derive(Debug)]
pub struct FakeApiServer {
    child: Child,
    pub port: u16,
}

impl FakeApiServer {
    pub fn start() -> FakeApiServer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fake/apiserver.py");
        let mut child = Command::new("python3")
            .args([script, "0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok());
        FakeApiServer {
            child,
            port: port.unwrap_or_else(|| panic!("fake API server said {line:?}")),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn post(&self, path: &str, body: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{path}: {reply}");
    }

    /// An ADDED, MODIFIED or DELETED event of `kind` for `object` (JSON).
    pub fn apply(&self, kind: &str, event: &str, object: serde_json::Value) {
        let body = serde_json::json!({"kind": kind, "type": event, "object": object});
        self.post("/_test/apply", &body.to_string());
    }

    /// What clients did so far: {"lists", "watches", "gone", "patches"} counts.
    pub fn stats(&self) -> serde_json::Value {
        self.get("/_test/stats")
    }

    /// A GET of `path` (a list such as `/api/v1/nodes`), its JSON body.
    pub fn get(&self, path: &str) -> serde_json::Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or("{}");
        serde_json::from_str(body).unwrap()
    }

    /// Forgets history: watches from before now get 410 Gone and must re-list.
    pub fn compact(&self) {
        self.post("/_test/compact", "{}");
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
