//! Next hops from the kernel: the routes and neighbours of one interface, read over rtnetlink
//! and turned into the pipeline's `Fib` (connected subnet, default gateway, neighbour MACs),
//! and `NextHopEvents`, the rtnetlink groups that say when to read them again.

use crate::pipeline::{Fib, Fib6};
use crate::wire::ethernet::MacAddr;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourHeader, NeighbourMessage,
    NeighbourState,
};
use netlink_packet_route::route::RouteType;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The main routing table.
const RT_TABLE_MAIN: u8 = 254;

fn err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// Asks the kernel to resolve `ip` on `ifname` (RTM_NEWNEIGH with NTF_USE, what `ip neigh
/// replace IP dev IF use` sends): the kernel sends ARP requests or neighbour solicitations as
/// if a packet waited, and the next read of the neighbour table has the answer. No packet of
/// ours goes to `ip`.
pub fn request_resolution(ifname: &str, ip: IpAddr) -> io::Result<()> {
    let mut msg = NeighbourMessage::default();
    let (family, destination) = match ip {
        IpAddr::V4(v4) => (AddressFamily::Inet, NeighbourAddress::Inet(v4)),
        IpAddr::V6(v6) => (AddressFamily::Inet6, NeighbourAddress::Inet6(v6)),
    };
    msg.header = NeighbourHeader {
        family,
        ifindex: ifindex(ifname)?,
        state: NeighbourState::None,
        flags: NeighbourFlags::Use,
        kind: RouteType::Unspec,
    };
    msg.attributes = vec![NeighbourAttribute::Destination(destination)];
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    let mut req = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::NewNeighbour(msg)),
    );
    req.finalize();
    let mut buf = vec![0; req.header.length as usize];
    req.serialize(&mut buf[..]);
    socket.send(&buf[..], 0)?;
    let mut rx = vec![0; 4096];
    let size = socket.recv(&mut &mut rx[..], 0)?;
    let ack: NetlinkMessage<RouteNetlinkMessage> =
        NetlinkMessage::deserialize(&rx[..size]).map_err(|e| err("rtnetlink ack", e))?;
    match ack.payload {
        NetlinkPayload::Error(e) if e.code.is_some() => {
            Err(err("resolve neighbour", format!("{e:?}")))
        }
        _ => Ok(()),
    }
}

/// The MAC address of `ifname` (in the current network namespace).
pub fn interface_mac(ifname: &str) -> io::Result<MacAddr> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address"))
        .map_err(|e| err(&format!("interface {ifname}"), e))?;
    text.parse()
        .map_err(|e| err(&format!("MAC of {ifname} ({})", text.trim()), e))
}

/// The MTU of `ifname` (in the current network namespace).
pub fn interface_mtu(ifname: &str) -> io::Result<u16> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{ifname}/mtu"))
        .map_err(|e| err(&format!("interface {ifname}"), e))?;
    let mtu: u32 = text
        .trim()
        .parse()
        .map_err(|e| err(&format!("MTU of {ifname}"), e))?;
    Ok(u16::try_from(mtu).unwrap_or(u16::MAX))
}

/// The kernel's index of `ifname` (in the current network namespace).
pub fn ifindex(ifname: &str) -> io::Result<u32> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{ifname}/ifindex"))
        .map_err(|e| err(&format!("interface {ifname}"), e))?;
    text.trim()
        .parse()
        .map_err(|e| err(&format!("ifindex of {ifname}"), e))
}

/// rtnetlink multicast groups (the RTMGRP_* bits of `linux/rtnetlink.h`).
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_NEIGH: u32 = 0x4;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;

/// Changes to this namespace's links, addresses, routes and neighbours, as the kernel announces
/// them: the daemon reads its next hops again when one comes, instead of waiting for the next
/// periodic read. The messages themselves are not parsed: any change means "read again".
#[derive(Debug)]
pub struct NextHopEvents {
    socket: Socket,
    buf: Vec<u8>,
}

impl NextHopEvents {
    pub fn open() -> io::Result<NextHopEvents> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        let groups = RTMGRP_LINK
            | RTMGRP_NEIGH
            | RTMGRP_IPV4_IFADDR
            | RTMGRP_IPV4_ROUTE
            | RTMGRP_IPV6_IFADDR
            | RTMGRP_IPV6_ROUTE;
        socket.bind(&SocketAddr::new(0, groups))?;
        socket.set_non_blocking(true)?;
        Ok(NextHopEvents {
            socket,
            buf: vec![0; 1 << 16],
        })
    }

    /// Takes every waiting announcement without blocking; returns how many there were. A
    /// receive queue that overflowed (ENOBUFS: announcements lost) counts as one.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        // Bounded: a storm of changes cannot hold the control thread here.
        for _ in 0..1024 {
            match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(0) => break,
                Ok(_) => n += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    n += 1;
                    break;
                }
            }
        }
        n
    }
}

/// Sends one dump request and collects the answers.
fn dump(request: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_DUMP | NLM_F_REQUEST;
    let mut req = NetlinkMessage::new(header, NetlinkPayload::from(request));
    req.finalize();
    let mut buf = vec![0; req.header.length as usize];
    req.serialize(&mut buf[..]);
    socket.send(&buf[..], 0)?;

    let mut out = Vec::new();
    let mut rx = vec![0; 1 << 16];
    loop {
        let size = socket.recv(&mut &mut rx[..], 0)?;
        let mut offset = 0;
        while offset < size {
            let msg: NetlinkMessage<RouteNetlinkMessage> =
                NetlinkMessage::deserialize(&rx[offset..size])
                    .map_err(|e| err("rtnetlink message", e))?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) => return Err(err("rtnetlink", format!("{e:?}"))),
                NetlinkPayload::InnerMessage(m) => out.push(m),
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += len;
        }
    }
}

/// One route of the main table through an interface, as the kernel holds it.
struct Route {
    len: u8,
    via: Option<IpAddr>,
    dst: Option<IpAddr>,
    scope: RouteScope,
}

fn route_address(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

/// The main table's routes of one family through interface `index`.
fn routes(index: u32, family: AddressFamily) -> io::Result<Vec<Route>> {
    let mut route = RouteMessage::default();
    route.header = RouteHeader {
        address_family: family,
        ..RouteHeader::default()
    };
    let mut out = Vec::new();
    for m in dump(RouteNetlinkMessage::GetRoute(route))? {
        let RouteNetlinkMessage::NewRoute(r) = m else {
            continue;
        };
        let attrs = &r.attributes;
        let on_this = attrs
            .iter()
            .any(|a| matches!(a, RouteAttribute::Oif(i) if *i == index));
        let table = attrs
            .iter()
            .find_map(|a| {
                if let RouteAttribute::Table(t) = a {
                    Some(*t)
                } else {
                    None
                }
            })
            .unwrap_or(u32::from(r.header.table));
        if !on_this || table != u32::from(RT_TABLE_MAIN) {
            continue;
        }
        out.push(Route {
            len: r.header.destination_prefix_length,
            via: attrs.iter().find_map(|a| match a {
                RouteAttribute::Gateway(g) => route_address(g),
                _ => None,
            }),
            dst: attrs.iter().find_map(|a| match a {
                RouteAttribute::Destination(d) => route_address(d),
                _ => None,
            }),
            scope: r.header.scope,
        });
    }
    Ok(out)
}

/// The usable neighbour entries of one family on interface `index` (ARP's or NDP's).
fn neighbours(index: u32, family: AddressFamily) -> io::Result<Vec<(IpAddr, MacAddr)>> {
    let mut neigh = NeighbourMessage::default();
    neigh.header.family = family;
    let mut out = Vec::new();
    for m in dump(RouteNetlinkMessage::GetNeighbour(neigh))? {
        let RouteNetlinkMessage::NewNeighbour(n) = m else {
            continue;
        };
        let usable = !matches!(
            n.header.state,
            NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::None
        );
        if n.header.ifindex != index || !usable {
            continue;
        }
        let ip = n.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
            _ => None,
        });
        let mac = n.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::LinkLocalAddress(b) => <[u8; 6]>::try_from(b.as_slice()).ok(),
            _ => None,
        });
        if let (Some(ip), Some(mac)) = (ip, mac) {
            out.push((ip, MacAddr(mac)));
        }
    }
    Ok(out)
}

/// The next hops of `ifname`: its connected IPv4 subnet, its default gateway, and every
/// usable IPv4 neighbour entry.
pub fn fib_for(ifname: &str) -> io::Result<Fib> {
    let index = ifindex(ifname)?;
    let v4 = |ip: Option<IpAddr>| match ip {
        Some(IpAddr::V4(v4)) => Some(v4),
        _ => None,
    };
    let (mut subnet, mut gateway) = (None, None);
    for r in routes(index, AddressFamily::Inet)? {
        match (r.len, v4(r.via), v4(r.dst)) {
            (0, Some(gw), _) => gateway = gateway.or(Some(gw)),
            (len, None, Some(net)) if r.scope == RouteScope::Link && subnet.is_none() => {
                subnet = Some((net, len))
            }
            _ => {}
        }
    }
    let (net, len) = subnet.unwrap_or((Ipv4Addr::UNSPECIFIED, 32));
    let mut fib = Fib::new(u32::from(net), len, gateway.map(u32::from));
    for (ip, mac) in neighbours(index, AddressFamily::Inet)? {
        if let IpAddr::V4(ip) = ip {
            fib.set_neighbor(u32::from(ip), mac);
        }
    }
    Ok(fib)
}

/// The IPv6 next hops of `ifname`: its first connected prefix that is not link-local, its
/// default gateway (often a link-local address, learned from router advertisements), and
/// every usable NDP neighbour entry. With no IPv6 route at all, an empty table: the pipeline
/// then drops IPv6 egress as `neighbor_unresolved`, counted.
pub fn fib6_for(ifname: &str) -> io::Result<Fib6> {
    let index = ifindex(ifname)?;
    let v6 = |ip: Option<IpAddr>| match ip {
        Some(IpAddr::V6(v6)) => Some(v6),
        _ => None,
    };
    let (mut prefix, mut gateway) = (None, None);
    for r in routes(index, AddressFamily::Inet6)? {
        match (r.len, v6(r.via), v6(r.dst)) {
            (0, Some(gw), _) => gateway = gateway.or(Some(gw)),
            (len, None, Some(net))
                if len > 0 && !net.is_unicast_link_local() && !net.is_multicast() =>
            {
                prefix = prefix.or(Some((net, len)))
            }
            _ => {}
        }
    }
    let (net, len) = prefix.unwrap_or((Ipv6Addr::UNSPECIFIED, 128));
    let mut fib = Fib6::new(u128::from(net), len, gateway.map(u128::from));
    for (ip, mac) in neighbours(index, AddressFamily::Inet6)? {
        if let IpAddr::V6(ip) = ip {
            fib.set_neighbor(u128::from(ip), mac);
        }
    }
    Ok(fib)
}
