//! A reply too big for the tunnel back, DF clear, is fragmented as a router would (RFC 791):
//! the translated inner IPv4 packet is cut into pieces that fit the underlay once
//! encapsulated, each piece tunnelled on its own, and the pod's stack reassembles them. The
//! first piece stays in its frame; the others are written to the worker's [`Spill`], which the
//! worker transmits after the batch. An incoming fragment is cut the same way (the pieces keep
//! its offset, and its MF flag on the last).

use super::{Iface, Output, BATCH, FRAME_STRIDE};
use crate::drop::DropReason;
use crate::wire::ipv4;

/// Room for the extra frames of a batch: twice the batch's own frames, which covers a full
/// batch of the largest replies cut for the smallest underlay MTU (576).
const SPILL_BYTES: usize = 2 * BATCH * FRAME_STRIDE;
/// Extra frames a batch may make.
const SPILL_FRAMES: usize = 8 * BATCH;
/// The most frames one batch transmits: its own and the extra ones.
pub const MAX_FRAMES_PER_BATCH: usize = BATCH + SPILL_FRAMES;

/// Frames a batch's translation made beyond one a frame, transmitted after the batch's own.
/// Allocated once; the caller clears it once it has sent them.
#[derive(Debug)]
pub struct Spill {
    buf: Vec<u8>,
    used: usize,
    outputs: Vec<Output>,
}

impl Default for Spill {
    fn default() -> Self {
        Spill::new()
    }
}

impl Spill {
    pub fn new() -> Spill {
        Spill {
            buf: vec![0; SPILL_BYTES],
            used: 0,
            outputs: Vec::with_capacity(SPILL_FRAMES),
        }
    }

    /// The frames made since the last [`Spill::clear`], in order.
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// The bytes of `out`, one of [`Spill::outputs`].
    pub fn bytes(&self, out: &Output) -> &[u8] {
        &self.buf[out.start..out.start + out.len]
    }

    pub fn clear(&mut self) {
        self.used = 0;
        self.outputs.clear();
    }

    /// Whether `frames` more frames of `bytes` bytes in all fit.
    fn has_room(&self, frames: usize, bytes: usize) -> bool {
        self.outputs.len() + frames <= SPILL_FRAMES && self.used + bytes <= self.buf.len()
    }
}

/// Cuts the translated inner IPv4 packet at `ip` in `buf` (`total` bytes, a 20-byte header)
/// into pieces of at most `max_inner` bytes. Pieces after the first go to `spill`, each behind
/// `outer_len` bytes of headers that `wrap` writes (given the piece's length); the first is
/// shortened in place and its length returned, for the caller to wrap. Nothing is written
/// unless every piece fits: `too_big_no_df` when the spill has no room left.
pub fn split(
    buf: &mut [u8],
    ip: usize,
    total: usize,
    max_inner: usize,
    outer_len: usize,
    spill: &mut Spill,
    mut wrap: impl FnMut(&mut [u8], u16) -> Option<()>,
) -> Result<u16, DropReason> {
    const HDR: usize = 20;
    let header: [u8; HDR] = buf
        .get(ip..ip + HDR)
        .and_then(|h| h.try_into().ok())
        .ok_or(DropReason::Ipv4Truncated)?;
    let payload = total.checked_sub(HDR).ok_or(DropReason::Ipv4Truncated)?;
    if buf.len() < ip + total {
        return Err(DropReason::Ipv4Truncated);
    }
    // Every piece but the last carries a multiple of eight bytes (offsets count eights).
    let piece = max_inner.saturating_sub(HDR) & !7;
    if piece == 0 || payload <= piece {
        return Err(DropReason::TooBigNoDf);
    }
    let pieces = payload.div_ceil(piece);
    let extra = payload - piece + (pieces - 1) * (outer_len + HDR);
    if !spill.has_room(pieces - 1, extra) {
        return Err(DropReason::TooBigNoDf);
    }
    let flags = u16::from_be_bytes([header[6], header[7]]);
    let (more, first_offset) = (flags & 0x2000 != 0, flags & 0x1fff);
    // A fragment ending past the largest datagram has offsets the field cannot hold.
    if usize::from(first_offset) * 8 + payload > usize::from(u16::MAX) - HDR {
        return Err(DropReason::Ipv4Malformed);
    }
    for i in 1..pieces {
        let from = i * piece;
        let len = piece.min(payload - from);
        let last = i == pieces - 1;
        let at = spill.used;
        let inner = at + outer_len;
        let end = inner + HDR + len;
        let out = &mut spill.buf[at..end];
        out[outer_len..outer_len + HDR].copy_from_slice(&header);
        let offset = first_offset + (from / 8) as u16;
        fix_header(
            &mut out[outer_len..outer_len + HDR],
            HDR + len,
            offset,
            more || !last,
        );
        out[outer_len + HDR..].copy_from_slice(&buf[ip + HDR + from..ip + HDR + from + len]);
        wrap(&mut out[..outer_len], (HDR + len) as u16).ok_or(DropReason::NoHeadroom)?;
        spill.used = end;
        spill.outputs.push(Output {
            iface: Iface::Underlay,
            start: at,
            len: end - at,
        });
    }
    fix_header(&mut buf[ip..ip + HDR], HDR + piece, first_offset, true);
    Ok((HDR + piece) as u16)
}

/// Sets a fragment's length, offset (in eights) and MF flag (DF clear), and its checksum.
fn fix_header(h: &mut [u8], total: usize, offset: u16, more: bool) {
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    let flags = offset | if more { 0x2000 } else { 0 };
    h[6..8].copy_from_slice(&flags.to_be_bytes());
    ipv4::Packet::new_unchecked(h).fill_checksum();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;

    /// A 20-byte header (identification 0x1234, `flags`) and `payload` bytes counting up.
    fn packet(payload: usize, flags: u16) -> Vec<u8> {
        let mut p = vec![0u8; 20 + payload];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[6..8].copy_from_slice(&flags.to_be_bytes());
        p[8] = 63;
        p[9] = 17;
        p[12..16].copy_from_slice(&[192, 168, 55, 13]);
        p[16..20].copy_from_slice(&[10, 133, 0, 3]);
        for (i, b) in p[20..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let c = checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// The pieces `split` made of `p` (behind `outer` bytes of 0xee), as (offset, MF, bytes).
    fn cut(p: &[u8], max_inner: usize, outer: usize) -> Vec<(usize, bool, Vec<u8>)> {
        let mut buf = p.to_vec();
        let mut spill = Spill::new();
        let first = split(
            &mut buf,
            0,
            p.len(),
            max_inner,
            outer,
            &mut spill,
            |h, _| {
                h.fill(0xee);
                Some(())
            },
        )
        .expect("fits");
        let mut pieces = vec![buf[..usize::from(first)].to_vec()];
        for o in spill.outputs() {
            let b = spill.bytes(o);
            assert!(b[..outer].iter().all(|&x| x == 0xee));
            assert_eq!(o.iface, Iface::Underlay);
            pieces.push(b[outer..].to_vec());
        }
        pieces
            .into_iter()
            .map(|b| {
                let h = ipv4::Packet::new_checked(&b[..]).expect("a whole IPv4 packet");
                assert!(h.verify_checksum());
                assert!(b.len() <= max_inner);
                assert!(!h.dont_frag());
                assert_eq!((h.ident(), h.ttl(), h.src()), (0x1234, 63, 0xc0a8_370d));
                (
                    usize::from(h.frag_offset()),
                    h.more_frags(),
                    b[20..].to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn a_whole_datagram_is_cut_into_pieces_that_reassemble_to_it() {
        let p = packet(3000, 0);
        let pieces = cut(&p, 1442, 72);
        assert_eq!(pieces.len(), 3);
        let mut whole = Vec::new();
        for (i, (offset, more, data)) in pieces.iter().enumerate() {
            assert_eq!(*offset, whole.len());
            assert_eq!(*more, i < 2);
            if i < 2 {
                assert_eq!(data.len(), 1416);
            }
            whole.extend_from_slice(data);
        }
        assert_eq!(whole, p[20..]);
    }

    #[test]
    fn a_fragment_is_cut_keeping_its_offset_and_its_more_fragments_flag() {
        // A middle fragment at byte 1480 (185 eights) with MF, and a last one without.
        for (flags, more_at_end) in [(0x2000 | 185, true), (185, false)] {
            let p = packet(1480, flags);
            let pieces = cut(&p, 1000, 72);
            assert_eq!(pieces.len(), 2);
            assert_eq!((pieces[0].0, pieces[0].1), (1480, true));
            assert_eq!(pieces[1].0, 1480 + pieces[0].2.len());
            assert_eq!(pieces[1].1, more_at_end);
            assert_eq!([&pieces[0].2[..], &pieces[1].2[..]].concat(), p[20..]);
        }
    }

    #[test]
    fn nothing_is_written_when_the_spill_has_no_room() {
        let mut spill = Spill::new();
        let p = packet(4000, 0);
        let mut made = 0;
        loop {
            let mut buf = p.clone();
            match split(&mut buf, 0, p.len(), 576, 72, &mut spill, |_, _| Some(())) {
                Ok(_) => made += 1,
                Err(e) => {
                    assert_eq!(e, DropReason::TooBigNoDf);
                    // The failed packet was left whole.
                    assert_eq!(buf, p);
                    break;
                }
            }
        }
        // A full batch of the largest packets cut for the smallest MTU fits.
        assert!(made >= BATCH, "{made}");
        assert!(spill.outputs().len() <= SPILL_FRAMES);
    }

    #[test]
    fn a_packet_that_fits_or_a_useless_limit_is_refused() {
        let mut spill = Spill::new();
        let mut p = packet(100, 0);
        let len = p.len();
        let r = split(&mut p, 0, len, 200, 72, &mut spill, |_, _| Some(()));
        assert_eq!(r, Err(DropReason::TooBigNoDf));
        let r = split(&mut p, 0, len, 27, 72, &mut spill, |_, _| Some(()));
        assert_eq!(r, Err(DropReason::TooBigNoDf));
        assert!(spill.outputs().is_empty());
    }
}
