//! RFC 5881 sockets: control packets arrive on UDP 3784 and count only with TTL (IPv6: hop
//! limit) 255, so they came from a neighbour on the link (GTSM); each session sends from its
//! own source port in 49152-65535 with TTL or hop limit 255. IPv4 and IPv6 each have their
//! receiving socket (RFC 5881 2 and 4 apply to both).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};

pub const CONTROL_PORT: u16 = 3784;
const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// The receiving socket of one family for every session of this speaker.
#[derive(Debug)]
pub struct BfdReceiver {
    socket: UdpSocket,
}

/// A received datagram: its length in the caller's buffer, source and TTL (hop limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub from: IpAddr,
    pub ttl: Option<u8>,
}

impl BfdReceiver {
    /// Binds UDP 3784 on `local`; an IPv6 socket takes IPv6 alone, so that one of each
    /// family can be bound.
    pub fn bind(local: IpAddr) -> io::Result<BfdReceiver> {
        let addr = SocketAddr::new(local, CONTROL_PORT);
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            None,
        )?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket
            .bind(&addr.into())
            .map_err(|e| io::Error::new(e.kind(), format!("BFD listen on {addr}: {e}")))?;
        let socket = UdpSocket::from(socket);
        socket.set_nonblocking(true)?;
        match addr {
            SocketAddr::V4(_) => setsockopt(&socket, sockopt::Ipv4RecvTtl, &true),
            SocketAddr::V6(_) => setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true),
        }
        .map_err(io::Error::from)?;
        Ok(BfdReceiver { socket })
    }

    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// One datagram, or `None` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        let mut cmsg = nix::cmsg_space!(libc::c_int);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match recvmsg::<SockaddrStorage>(
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
                match c {
                    ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                        ttl = u8::try_from(t).ok()
                    }
                    _ => {}
                }
            }
        }
        let from = msg.address.and_then(|a| {
            if let Some(v4) = a.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        });
        Ok(Some(Received {
            len: msg.bytes,
            from: from.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
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
    pub fn connect(local: IpAddr, peer: IpAddr, seed: u32) -> io::Result<BfdSender> {
        let span = u32::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
        let mut last = io::Error::other("no free BFD source port");
        for i in 0..64 {
            let port = SOURCE_PORTS.start() + ((seed.wrapping_add(i) % span) as u16);
            match UdpSocket::bind(SocketAddr::new(local, port)) {
                Ok(socket) => {
                    match local {
                        IpAddr::V4(_) => socket.set_ttl(255)?,
                        IpAddr::V6(_) => {
                            setsockopt(&socket, sockopt::Ipv6Ttl, &255).map_err(io::Error::from)?
                        }
                    }
                    socket.set_nonblocking(true)?;
                    socket.connect(SocketAddr::new(peer, CONTROL_PORT))?;
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
