//! The daemon's side of the control socket: a Unix stream socket (mode 0660, optionally owned
//! by a group), served from the daemon's control thread with mio. Each connection may send any
//! number of framed requests; each gets one framed response. Bad input gets an error response
//! and the daemon carries on: a malformed request, one too large (the connection is then
//! closed, as its framing is lost), too many requests too fast, a peer without the right to
//! change state.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use nix::sys::socket::{getsockopt, sockopt};

use crate::proto::{self, ControlError, ErrorKind, Request, Response, ResponseFrame, VERSION};

/// Who is asking, from SO_PEERCRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
}

/// What the daemon does with a request.
pub trait Handler {
    fn handle(&mut self, request: Request, peer: PeerCred) -> Result<Response, ControlError>;

    /// Called once after a turn's requests were handled and before their answers are sent:
    /// where a handler makes its changes take effect together.
    fn commit(&mut self) {}
}

const LISTENER: Token = Token(0);
const MAX_CLIENTS: usize = 64;
/// Token bucket per connection: a burst, then a steady rate.
const BURST: f64 = 200.0;
const RATE_PER_SEC: f64 = 2000.0;

struct Client {
    stream: UnixStream,
    peer: PeerCred,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    tokens: f64,
    refilled: Instant,
    closing: bool,
}

#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    poll: Poll,
    listener: UnixListener,
    clients: HashMap<Token, ClientSlot>,
    next: usize,
    write_gid: Option<u32>,
}

// A newtype so `ControlServer` can derive Debug without exposing the client internals.
struct ClientSlot(Client);

impl std::fmt::Debug for ClientSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "client(uid {})", self.0.peer.uid)
    }
}

impl ControlServer {
    /// Binds `path` (mode 0660; group `gid` when given). A socket left by a crashed daemon is
    /// replaced; a live one (something answers) or any other file there is an error.
    pub fn bind(path: &Path, gid: Option<u32>) -> io::Result<ControlServer> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("{}: another daemon is serving it", path.display()),
                    ));
                }
                std::fs::remove_file(path)?;
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{}: exists and is not a socket; not touching it",
                        path.display()
                    ),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut listener = UnixListener::bind(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        if let Some(gid) = gid {
            std::os::unix::fs::chown(path, None, Some(gid))?;
        }
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(ControlServer {
            path: path.to_owned(),
            poll,
            listener,
            clients: HashMap::new(),
            next: 1,
            write_gid: gid,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits up to `timeout` for requests and answers them with `handler`.
    pub fn poll(&mut self, timeout: Duration, handler: &mut impl Handler) {
        let mut events = Events::with_capacity(32);
        if self.poll.poll(&mut events, Some(timeout)).is_err() {
            return;
        }
        let mut gone = Vec::new();
        for event in events.iter() {
            match event.token() {
                LISTENER => self.accept(),
                token => {
                    if self.serve(token, handler) {
                        gone.push(token);
                    }
                }
            }
        }
        // Changes are committed once for all of this turn's requests, before any answer
        // leaves: an answer means the change is in effect.
        handler.commit();
        let tokens: Vec<Token> = self.clients.keys().copied().collect();
        for token in tokens {
            let Some(ClientSlot(client)) = self.clients.get_mut(&token) else {
                continue;
            };
            let broken = flush(client);
            if broken || gone.contains(&token) || (client.closing && client.wbuf.is_empty()) {
                if let Some(ClientSlot(mut c)) = self.clients.remove(&token) {
                    let _ = self.poll.registry().deregister(&mut c.stream);
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return,
            };
            if self.clients.len() >= MAX_CLIENTS {
                continue; // dropped: closed at once
            }
            let Ok(cred) = getsockopt(&stream, sockopt::PeerCredentials) else {
                continue;
            };
            let peer = PeerCred {
                uid: cred.uid(),
                gid: cred.gid(),
                pid: cred.pid(),
            };
            let token = Token(self.next);
            self.next += 1;
            if self
                .poll
                .registry()
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                continue;
            }
            let client = Client {
                stream,
                peer,
                rbuf: Vec::new(),
                wbuf: Vec::new(),
                tokens: BURST,
                refilled: Instant::now(),
                closing: false,
            };
            self.clients.insert(token, ClientSlot(client));
        }
    }

    /// Reads and answers what `token`'s client sent (answers are written after the commit);
    /// true when the client went away.
    fn serve(&mut self, token: Token, handler: &mut impl Handler) -> bool {
        let write_gid = self.write_gid;
        let Some(ClientSlot(client)) = self.clients.get_mut(&token) else {
            return false;
        };
        let mut chunk = [0u8; 16384];
        let mut gone = false;
        loop {
            match client.stream.read(&mut chunk) {
                Ok(0) => {
                    gone = true;
                    break;
                }
                Ok(n) => {
                    client.rbuf.extend_from_slice(&chunk[..n]);
                    if client.rbuf.len() > proto::MAX_FRAME + 4 {
                        break; // take_frame below reports it
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    gone = true;
                    break;
                }
            }
        }
        while !client.closing {
            let json = match proto::take_frame(&mut client.rbuf) {
                Ok(Some(json)) => json,
                Ok(None) => break,
                Err(e) => {
                    let err = ControlError::new(ErrorKind::BadRequest, e.to_string());
                    client.wbuf.extend(proto::encode(&ResponseFrame {
                        version: VERSION,
                        result: Err(err),
                    }));
                    client.closing = true;
                    break;
                }
            };
            let result = answer(client, &json, write_gid, handler);
            client.wbuf.extend(proto::encode(&ResponseFrame {
                version: VERSION,
                result,
            }));
        }
        gone
    }
}

/// Writes what the socket takes; true when the connection broke.
fn flush(client: &mut Client) -> bool {
    while !client.wbuf.is_empty() {
        match client.stream.write(&client.wbuf) {
            Ok(0) => return true,
            Ok(n) => {
                client.wbuf.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
    false
}

fn answer(
    client: &mut Client,
    json: &[u8],
    write_gid: Option<u32>,
    handler: &mut impl Handler,
) -> Result<Response, ControlError> {
    let now = Instant::now();
    client.tokens = (client.tokens
        + now.duration_since(client.refilled).as_secs_f64() * RATE_PER_SEC)
        .min(BURST);
    client.refilled = now;
    if client.tokens < 1.0 {
        return Err(ControlError::new(
            ErrorKind::RateLimited,
            "too many requests; slow down",
        ));
    }
    client.tokens -= 1.0;
    let request = proto::parse_request(json)?;
    if request.mutates() && !may_write(client.peer, write_gid) {
        return Err(ControlError::new(
            ErrorKind::PermissionDenied,
            format!(
                "uid {} may read but not change the gateway",
                client.peer.uid
            ),
        ));
    }
    handler.handle(request, client.peer)
}

/// Root, the daemon's own user, and the socket's group may change state. The socket's mode
/// already keeps everyone else from connecting; this holds even if the mode is loosened.
fn may_write(peer: PeerCred, write_gid: Option<u32>) -> bool {
    peer.uid == 0
        || peer.uid == nix::unistd::geteuid().as_raw()
        || write_gid.is_some_and(|g| g == peer.gid || in_group(peer.uid, g))
}

fn in_group(uid: u32, gid: u32) -> bool {
    let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return false;
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return false;
    };
    nix::unistd::getgrouplist(&name, user.gid)
        .is_ok_and(|groups| groups.iter().any(|g| g.as_raw() == gid))
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
