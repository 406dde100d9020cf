//! RFC 5881 sockets: control packets arrive on UDP 3784 and count only with TTL 255 (so they
//! came from a neighbour on the link, GTSM); each session sends from its own source port in
//! 49152-65535 with TTL 255.

use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn};

pub const CONTROL_PORT: u16 = 3784;
const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// The receiving socket for every session of this speaker.
#[derive(Debug)]
pub struct BfdReceiver {
    socket: UdpSocket,
}

/// A received datagram: its length in the caller's buffer, source and TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub from: Ipv4Addr,
    pub ttl: Option<u8>,
}

impl BfdReceiver {
    pub fn bind(local: Ipv4Addr) -> io::Result<BfdReceiver> {
        let addr = SocketAddr::V4(SocketAddrV4::new(local, CONTROL_PORT));
        let socket = UdpSocket::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("BFD listen on {addr}: {e}")))?;
        socket.set_nonblocking(true)?;
        setsockopt(&socket, sockopt::Ipv4RecvTtl, &true).map_err(io::Error::from)?;
        Ok(BfdReceiver { socket })
    }

    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// One datagram, or `None` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        let mut cmsg = nix::cmsg_space!(libc::c_int);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match recvmsg::<SockaddrIn>(
            self.socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(m) => m,
            Err(nix::errno::Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut ttl = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::Ipv4Ttl(t) = c {
                    ttl = u8::try_from(t).ok();
                }
            }
        }
        let from = msg.address.map_or(Ipv4Addr::UNSPECIFIED, |a| a.ip());
        Ok(Some(Received {
            len: msg.bytes,
            from,
            ttl,
        }))
    }
}

/// A session's sending socket, connected to the peer's control port.
#[derive(Debug)]
pub struct BfdSender {
    socket: UdpSocket,
}

impl BfdSender {
    /// Binds the first free source port from a start derived from `seed`.
    pub fn connect(local: Ipv4Addr, peer: Ipv4Addr, seed: u32) -> io::Result<BfdSender> {
        let span = u32::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
        let mut last = io::Error::other("no free BFD source port");
        for i in 0..64 {
            let port = SOURCE_PORTS.start() + ((seed.wrapping_add(i) % span) as u16);
            match UdpSocket::bind(SocketAddrV4::new(local, port)) {
                Ok(socket) => {
                    socket.set_ttl(255)?;
                    socket.set_nonblocking(true)?;
                    socket.connect(SocketAddrV4::new(peer, CONTROL_PORT))?;
                    return Ok(BfdSender { socket });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Best effort, like every BFD transmission: a failed send is a missed packet.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        self.socket.send(packet).map(|_| ())
    }
}
