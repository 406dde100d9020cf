//! NOTIFICATION (RFC 4271 4.5) with the error codes of section 6 and RFC 4486 cease subcodes.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

/// Error codes (RFC 4271 4.5) as named constants; unknown codes stay representable.
#[derive(Debug)]
pub struct NotificationCode;

impl NotificationCode {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Self {
        Notification {
            code,
            subcode,
            data,
        }
    }

    pub fn cease(subcode: u8) -> Self {
        Notification::new(NotificationCode::CEASE, subcode, Vec::new())
    }

    // RFC 4486 cease subcodes we send.
    pub const CEASE_ADMIN_SHUTDOWN: u8 = 2;
    pub const CEASE_PEER_DECONFIGURED: u8 = 3;
    pub const CEASE_ADMIN_RESET: u8 = 4;
    pub const CEASE_CONNECTION_REJECTED: u8 = 5;
    pub const CEASE_COLLISION: u8 = 7;
    pub const CEASE_OUT_OF_RESOURCES: u8 = 8;

    pub(super) fn decode(body: &[u8]) -> Notification {
        // frame_len guaranteed at least the two code bytes.
        Notification::new(body[0], body[1], body[2..].to_vec())
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.code, self.subcode]);
        out.extend_from_slice(&self.data);
    }

    /// The RFC's name for the code and subcode, for logs and `egressctl bgp neighbors`.
    pub fn describe(&self) -> String {
        let code = match self.code {
            1 => "message header error",
            2 => "OPEN message error",
            3 => "UPDATE message error",
            4 => "hold timer expired",
            5 => "finite state machine error",
            6 => "cease",
            7 => "ROUTE-REFRESH message error",
            _ => "unknown error",
        };
        let sub = match (self.code, self.subcode) {
            (1, 1) => "connection not synchronized",
            (1, 2) => "bad message length",
            (1, 3) => "bad message type",
            (2, 1) => "unsupported version number",
            (2, 2) => "bad peer AS",
            (2, 3) => "bad BGP identifier",
            (2, 4) => "unsupported optional parameter",
            (2, 6) => "unacceptable hold time",
            (2, 7) => "unsupported capability",
            (3, 1) => "malformed attribute list",
            (3, 2) => "unrecognized well-known attribute",
            (3, 3) => "missing well-known attribute",
            (3, 4) => "attribute flags error",
            (3, 5) => "attribute length error",
            (3, 6) => "invalid ORIGIN attribute",
            (3, 8) => "invalid NEXT_HOP attribute",
            (3, 9) => "optional attribute error",
            (3, 10) => "invalid network field",
            (3, 11) => "malformed AS_PATH",
            (6, 1) => "maximum number of prefixes reached",
            (6, 2) => "administrative shutdown",
            (6, 3) => "peer de-configured",
            (6, 4) => "administrative reset",
            (6, 5) => "connection rejected",
            (6, 6) => "other configuration change",
            (6, 7) => "connection collision resolution",
            (6, 8) => "out of resources",
            (6, 9) => "hard reset",
            (6, 10) => "BFD down",
            _ => "",
        };
        if sub.is_empty() {
            format!("{code} ({}/{})", self.code, self.subcode)
        } else {
            format!("{code}: {sub} ({}/{})", self.code, self.subcode)
        }
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Codec, Message};
    use super::*;

    #[test]
    fn golden_cease_admin_shutdown() {
        let mut bytes = vec![0xff; 16];
        bytes.extend_from_slice(&[0, 21, 3, 6, 2]);
        let msg = Message::Notification(Notification::cease(Notification::CEASE_ADMIN_SHUTDOWN));
        assert_eq!(Message::decode(&bytes, Codec::INITIAL), Ok(msg.clone()));
        let mut out = Vec::new();
        msg.encode(Codec::INITIAL, &mut out).unwrap();
        assert_eq!(out, bytes);
        assert_eq!(
            Notification::cease(2).describe(),
            "cease: administrative shutdown (6/2)"
        );
    }

    #[test]
    fn data_is_carried() {
        let mut bytes = vec![0xff; 16];
        bytes.extend_from_slice(&[0, 23, 3, 2, 1, 0, 4]);
        let Ok(Message::Notification(n)) = Message::decode(&bytes, Codec::INITIAL) else {
            panic!("not a notification");
        };
        assert_eq!(n, Notification::new(2, 1, vec![0, 4]));
    }
}
