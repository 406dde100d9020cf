//! TCP connection tracking, as far as NAT needs it: which timeout applies (VPP NAT44-ED's
//! model: established vs transitory), and reopening a closed session on a new SYN.

use super::flow::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use super::Timeouts;
use crate::wire::tcp::flags as tcp;

/// Session flag bits (the 8 flag bits of the state word).
pub mod flag {
    /// SYN seen from the inside (pod).
    pub const SYN_OUT: u8 = 0x01;
    /// SYN seen from the outside (the SYN-ACK).
    pub const SYN_IN: u8 = 0x02;
    pub const FIN_OUT: u8 = 0x04;
    pub const FIN_IN: u8 = 0x08;
    pub const RST: u8 = 0x10;
}

/// Which way a packet crosses the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Pod -> world.
    Out,
    /// World -> pod.
    In,
}

/// The flags after a TCP segment with `tcp_flags` went `dir`.
#[inline]
pub fn track(flags: u8, tcp_flags: u8, dir: Direction) -> u8 {
    let closed = flags & (flag::FIN_OUT | flag::FIN_IN | flag::RST) != 0;
    let syn = tcp_flags & tcp::SYN != 0 && tcp_flags & tcp::ACK == 0;
    if closed && syn && dir == Direction::Out {
        // A new connection reusing the tuple (after time-wait): start over.
        return flag::SYN_OUT;
    }
    let mut f = flags;
    if tcp_flags & tcp::RST != 0 {
        f |= flag::RST;
    }
    match dir {
        Direction::Out => {
            if tcp_flags & tcp::SYN != 0 {
                f |= flag::SYN_OUT;
            }
            if tcp_flags & tcp::FIN != 0 {
                f |= flag::FIN_OUT;
            }
        }
        Direction::In => {
            if tcp_flags & tcp::SYN != 0 {
                f |= flag::SYN_IN;
            }
            if tcp_flags & tcp::FIN != 0 {
                f |= flag::FIN_IN;
            }
        }
    }
    f
}

/// Whether a TCP session is established (SYN both ways, no FIN or RST).
pub fn is_established(flags: u8) -> bool {
    flags & (flag::SYN_OUT | flag::SYN_IN) == flag::SYN_OUT | flag::SYN_IN
        && flags & (flag::FIN_OUT | flag::FIN_IN | flag::RST) == 0
}

/// A name for the session's TCP state, for operators (`egressctl sessions`).
pub fn state_name(flags: u8) -> &'static str {
    if flags & flag::RST != 0 {
        "reset"
    } else if flags & (flag::FIN_OUT | flag::FIN_IN) == flag::FIN_OUT | flag::FIN_IN {
        "closing"
    } else if flags & (flag::FIN_OUT | flag::FIN_IN) != 0 {
        "half_closed"
    } else if is_established(flags) {
        "established"
    } else {
        "syn_sent"
    }
}

/// A session's protocol and state, named for operators (`egressctl sessions`, metrics labels).
pub fn describe(proto: u8, flags: u8) -> (&'static str, &'static str) {
    match proto {
        PROTO_TCP => ("tcp", state_name(flags)),
        PROTO_UDP => ("udp", "active"),
        PROTO_ICMP => ("icmp", "active"),
        _ => ("other", "active"),
    }
}

/// The idle timeout in seconds for a session of `proto` with `flags`.
pub fn timeout(t: &Timeouts, proto: u8, flags: u8) -> u32 {
    match proto {
        PROTO_TCP if is_established(flags) => t.tcp_established,
        PROTO_TCP => t.tcp_transitory,
        PROTO_UDP => t.udp,
        PROTO_ICMP | PROTO_ICMPV6 => t.icmp,
        _ => t.udp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        tcp_established: 7440,
        tcp_transitory: 240,
        udp: 300,
        icmp: 60,
    };

    #[test]
    fn handshake_data_and_close() {
        let mut f = track(0, tcp::SYN, Direction::Out);
        assert_eq!(timeout(&T, PROTO_TCP, f), 240);
        f = track(f, tcp::SYN | tcp::ACK, Direction::In);
        assert!(is_established(f));
        assert_eq!(timeout(&T, PROTO_TCP, f), 7440);
        f = track(f, tcp::ACK | tcp::PSH, Direction::Out);
        assert!(is_established(f));
        f = track(f, tcp::FIN | tcp::ACK, Direction::Out);
        assert!(!is_established(f));
        f = track(f, tcp::FIN | tcp::ACK, Direction::In);
        assert_eq!(timeout(&T, PROTO_TCP, f), 240);
        // Time-wait reuse: a fresh SYN from the pod reopens.
        assert_eq!(track(f, tcp::SYN, Direction::Out), flag::SYN_OUT);
    }

    #[test]
    fn reset_is_transitory() {
        let f = track(flag::SYN_OUT | flag::SYN_IN, tcp::RST, Direction::In);
        assert_eq!(timeout(&T, PROTO_TCP, f), 240);
    }

    #[test]
    fn midstream_pickup_is_transitory_until_syns() {
        let f = track(0, tcp::ACK, Direction::Out);
        assert_eq!(timeout(&T, PROTO_TCP, f), 240);
        assert_eq!(timeout(&T, PROTO_UDP, 0), 300);
        assert_eq!(timeout(&T, PROTO_ICMP, 0), 60);
    }
}
