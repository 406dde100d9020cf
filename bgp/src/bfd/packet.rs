//! The BFD control packet (RFC 5880 4.1), without authentication (we never set the A bit and
//! discard packets that do, RFC 5880 6.8.6).

use std::time::Duration;

pub const LEN: usize = 24;

mod field {
    pub const VERS_DIAG: usize = 0;
    pub const STA_FLAGS: usize = 1;
    pub const DETECT_MULT: usize = 2;
    pub const LENGTH: usize = 3;
    pub const MY_DISCR: usize = 4;
    pub const YOUR_DISCR: usize = 8;
    pub const DESIRED_MIN_TX: usize = 12;
    pub const REQUIRED_MIN_RX: usize = 16;
    pub const REQUIRED_MIN_ECHO_RX: usize = 20;
}

const FLAG_POLL: u8 = 0x20;
const FLAG_FINAL: u8 = 0x10;
const FLAG_CPI: u8 = 0x08;
const FLAG_AUTH: u8 = 0x04;
const FLAG_DEMAND: u8 = 0x02;
const FLAG_MULTIPOINT: u8 = 0x01;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SessionState {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl SessionState {
    fn from_bits(b: u8) -> SessionState {
        match b & 3 {
            0 => SessionState::AdminDown,
            1 => SessionState::Down,
            2 => SessionState::Init,
            _ => SessionState::Up,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SessionState::AdminDown => "AdminDown",
            SessionState::Down => "Down",
            SessionState::Init => "Init",
            SessionState::Up => "Up",
        }
    }
}

/// Diagnostic codes (RFC 5880 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diag(pub u8);

impl Diag {
    pub const NONE: Diag = Diag(0);
    pub const DETECTION_TIME_EXPIRED: Diag = Diag(1);
    pub const NEIGHBOR_DOWN: Diag = Diag(3);
    pub const ADMIN_DOWN: Diag = Diag(7);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "no diagnostic",
            1 => "control detection time expired",
            2 => "echo function failed",
            3 => "neighbor signaled session down",
            4 => "forwarding plane reset",
            5 => "path down",
            6 => "concatenated path down",
            7 => "administratively down",
            8 => "reverse concatenated path down",
            _ => "reserved",
        }
    }
}

/// The owned meaning of a control packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlPacket {
    pub diag: Diag,
    pub state: SessionState,
    pub poll: bool,
    pub final_: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    pub desired_min_tx: Duration,
    pub required_min_rx: Duration,
}

/// Why a received packet was discarded (RFC 5880 6.8.6 reception checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    Truncated,
    BadVersion,
    BadLength,
    ZeroDetectMult,
    Multipoint,
    ZeroMyDiscriminator,
    Authenticated,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl ControlPacket {
    pub fn parse(b: &[u8]) -> Result<ControlPacket, Discard> {
        if b.len() < LEN {
            return Err(Discard::Truncated);
        }
        if b[field::VERS_DIAG] >> 5 != 1 {
            return Err(Discard::BadVersion);
        }
        let length = usize::from(b[field::LENGTH]);
        let flags = b[field::STA_FLAGS];
        if length < LEN || length > b.len() {
            return Err(Discard::BadLength);
        }
        if flags & FLAG_AUTH != 0 {
            return Err(Discard::Authenticated);
        }
        if b[field::DETECT_MULT] == 0 {
            return Err(Discard::ZeroDetectMult);
        }
        if flags & FLAG_MULTIPOINT != 0 {
            return Err(Discard::Multipoint);
        }
        let my_discr = be32(b, field::MY_DISCR);
        if my_discr == 0 {
            return Err(Discard::ZeroMyDiscriminator);
        }
        let _ = (FLAG_CPI, FLAG_DEMAND, field::REQUIRED_MIN_ECHO_RX);
        Ok(ControlPacket {
            diag: Diag(b[field::VERS_DIAG] & 0x1f),
            state: SessionState::from_bits(flags >> 6),
            poll: flags & FLAG_POLL != 0,
            final_: flags & FLAG_FINAL != 0,
            detect_mult: b[field::DETECT_MULT],
            my_discr,
            your_discr: be32(b, field::YOUR_DISCR),
            desired_min_tx: Duration::from_micros(u64::from(be32(b, field::DESIRED_MIN_TX))),
            required_min_rx: Duration::from_micros(u64::from(be32(b, field::REQUIRED_MIN_RX))),
        })
    }

    pub fn emit(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[field::VERS_DIAG] = (1 << 5) | (self.diag.0 & 0x1f);
        let mut flags = (self.state as u8) << 6;
        if self.poll {
            flags |= FLAG_POLL;
        }
        if self.final_ {
            flags |= FLAG_FINAL;
        }
        b[field::STA_FLAGS] = flags;
        b[field::DETECT_MULT] = self.detect_mult;
        b[field::LENGTH] = LEN as u8;
        b[field::MY_DISCR..][..4].copy_from_slice(&self.my_discr.to_be_bytes());
        b[field::YOUR_DISCR..][..4].copy_from_slice(&self.your_discr.to_be_bytes());
        let micros = |d: Duration| {
            u32::try_from(d.as_micros())
                .unwrap_or(u32::MAX)
                .to_be_bytes()
        };
        b[field::DESIRED_MIN_TX..][..4].copy_from_slice(&micros(self.desired_min_tx));
        b[field::REQUIRED_MIN_RX..][..4].copy_from_slice(&micros(self.required_min_rx));
        // We do not support the echo function: Required Min Echo RX Interval stays 0.
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BIRD 2.0's first two packets to our speaker, captured with tcpdump in the interop lab:
    /// Init at the slow 1 s rate (RFC 5880 6.8.3), then Up with Final answering our Poll.
    const BIRD_INIT: [u8; 24] = [
        0x20, 0x80, 0x03, 0x18, 0xa8, 0x48, 0x3c, 0x6f, 0x52, 0x00, 0x00, 0x00, //
        0x00, 0x0f, 0x42, 0x40, 0x00, 0x04, 0x93, 0xe0, 0x00, 0x00, 0x00, 0x00,
    ];
    const BIRD_UP_FINAL: [u8; 24] = [
        0x20, 0xd0, 0x03, 0x18, 0xa8, 0x48, 0x3c, 0x6f, 0x52, 0x00, 0x00, 0x00, //
        0x00, 0x04, 0x93, 0xe0, 0x00, 0x04, 0x93, 0xe0, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn golden_parse_and_emit() {
        let p = ControlPacket::parse(&BIRD_INIT).unwrap();
        assert_eq!(p.state, SessionState::Init);
        assert_eq!(
            (p.my_discr, p.your_discr, p.detect_mult),
            (0xa848_3c6f, 0x5200_0000, 3)
        );
        assert_eq!(p.desired_min_tx, Duration::from_secs(1));
        assert_eq!(p.required_min_rx, Duration::from_millis(300));
        assert!(!p.poll && !p.final_);
        assert_eq!(p.emit(), BIRD_INIT);
        let up = ControlPacket::parse(&BIRD_UP_FINAL).unwrap();
        assert_eq!(
            (up.state, up.final_, up.poll),
            (SessionState::Up, true, false)
        );
        assert_eq!(up.desired_min_tx, Duration::from_millis(300));
        assert_eq!(up.emit(), BIRD_UP_FINAL);
        let pf = ControlPacket { poll: true, ..up };
        assert_eq!(pf.emit()[1], 0xf0);
        assert_eq!(ControlPacket::parse(&pf.emit()), Ok(pf));
    }

    #[test]
    fn reception_checks() {
        let with = |i: usize, v: u8| {
            let mut b = BIRD_INIT;
            b[i] = v;
            ControlPacket::parse(&b)
        };
        assert_eq!(
            ControlPacket::parse(&BIRD_INIT[..23]),
            Err(Discard::Truncated)
        );
        assert_eq!(with(0, 0x40), Err(Discard::BadVersion));
        assert_eq!(with(3, 23), Err(Discard::BadLength));
        assert_eq!(with(3, 25), Err(Discard::BadLength));
        assert_eq!(with(2, 0), Err(Discard::ZeroDetectMult));
        assert_eq!(with(1, 0x81), Err(Discard::Multipoint));
        assert_eq!(with(1, 0x84), Err(Discard::Authenticated));
        let mut zero_discr = BIRD_INIT;
        zero_discr[4..8].fill(0);
        assert_eq!(
            ControlPacket::parse(&zero_discr),
            Err(Discard::ZeroMyDiscriminator)
        );
    }
}
