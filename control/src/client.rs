//! The client side: one connection, requests answered in order. Used by `egressctl` and the
//! watcher.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::proto::{self, ControlError, Request, RequestFrame, Response, ResponseFrame, VERSION};

#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
}

#[derive(Debug)]
pub enum ClientError {
    /// The daemon is not there (no socket, refused, permission denied on connect).
    Connect(io::Error),
    /// The connection broke or the daemon sent something unreadable.
    Io(io::Error),
    /// The daemon answered with an error.
    Daemon(ControlError),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "cannot reach the daemon: {e}"),
            ClientError::Io(e) => write!(f, "control connection: {e}"),
            ClientError::Daemon(e) => write!(f, "the daemon refused: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|e| {
            ClientError::Connect(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        })?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(ClientError::Io)?;
        Ok(Client {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn request(&mut self, request: Request) -> Result<Response, ClientError> {
        let frame = proto::encode(&RequestFrame {
            version: VERSION,
            request,
        });
        self.stream.write_all(&frame).map_err(ClientError::Io)?;
        let json = loop {
            match proto::take_frame(&mut self.buf) {
                Ok(Some(json)) => break json,
                Ok(None) => {}
                Err(e) => return Err(ClientError::Io(io::Error::other(e.to_string()))),
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).map_err(ClientError::Io)?;
            if n == 0 {
                return Err(ClientError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let response: ResponseFrame = serde_json::from_slice(&json)
            .map_err(|e| ClientError::Io(io::Error::other(format!("unreadable response: {e}"))))?;
        response.result.map_err(ClientError::Daemon)
    }
}
