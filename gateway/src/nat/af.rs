//! The two address families as the session table sees them: each family's flow key, egress
//! address, record and snapshot, and how a slot stores and compares them. The table's
//! lookups, creation and removal are written once over this.

use super::flow::{FlowHasher, FlowKey, FlowKey6};
use super::session::{
    Entry, Session, Session6, SessionData, SessionData6, Snapshot, Snapshot6, State, TunnelEndpoint,
};

pub trait Family {
    type Key: Copy + PartialEq + core::fmt::Debug;
    type Addr: Copy;
    type Data: Copy + PartialEq;
    type Snap: Copy;
    type Slot;

    /// Slot `idx` if it is one of this family's: the IPv4 slots are numbered from 0, the
    /// IPv6 ones from `base`.
    fn slot<'a>(
        v4: &'a [Session],
        v6: &'a [Session6],
        base: u32,
        idx: u32,
    ) -> Option<&'a Self::Slot>;
    /// Of a worker's two (free slots, cursors), this family's.
    fn pick<T>(v4: T, v6: T) -> T;
    fn retire_now(slot: &Self::Slot);
    fn touch(slot: &Self::Slot, generation: u32, now: u32, update: impl Fn(u8) -> u8) -> bool;
    /// The slot's session as its owner reads it (no other writer exists).
    fn owner_entry(slot: &Self::Slot) -> Entry;
    fn slot_state(slot: &Self::Slot) -> State;

    fn hash(h: &FlowHasher, k: &Self::Key) -> u64;
    fn reply_at(inside: &Self::Key, ext_ip: Self::Addr, ext_port: u16) -> Self::Key;
    fn data(
        inside: Self::Key,
        ext_ip: Self::Addr,
        ext_port: u16,
        tunnel: TunnelEndpoint,
    ) -> Self::Data;
    fn outside(d: &Self::Data) -> Self::Key;
    fn inside(d: &Self::Data) -> Self::Key;
    fn data_of(s: &Self::Snap) -> Self::Data;
    fn publish(slot: &Self::Slot, d: &Self::Data, flags: u8, now: u32) -> u32;
    fn read(slot: &Self::Slot) -> Option<Self::Snap>;
    fn generation(s: &Self::Snap) -> u32;
    fn is_inside(s: &Self::Snap, k: &Self::Key) -> bool;
    fn is_outside(s: &Self::Snap, k: &Self::Key) -> bool;
}

#[derive(Debug)]
pub enum V4 {}

#[derive(Debug)]
pub enum V6 {}

impl Family for V4 {
    type Key = FlowKey;
    type Addr = u32;
    type Data = SessionData;
    type Snap = Snapshot;
    type Slot = Session;

    #[inline(always)]
    fn slot<'a>(v4: &'a [Session], _: &'a [Session6], _: u32, idx: u32) -> Option<&'a Session> {
        v4.get(idx as usize)
    }
    fn pick<T>(v4: T, _: T) -> T {
        v4
    }
    fn retire_now(slot: &Session) {
        slot.retire_now()
    }
    fn touch(slot: &Session, generation: u32, now: u32, update: impl Fn(u8) -> u8) -> bool {
        slot.touch(generation, now, update)
    }
    fn owner_entry(slot: &Session) -> Entry {
        Entry::V4(slot.owner_data())
    }
    fn slot_state(slot: &Session) -> State {
        slot.state()
    }

    #[inline(always)]
    fn hash(h: &FlowHasher, k: &FlowKey) -> u64 {
        h.hash(k)
    }
    #[inline(always)]
    fn reply_at(inside: &FlowKey, ext_ip: u32, ext_port: u16) -> FlowKey {
        inside.reply_at(ext_ip, ext_port)
    }
    fn data(inside: FlowKey, ext_ip: u32, ext_port: u16, tunnel: TunnelEndpoint) -> SessionData {
        SessionData {
            inside,
            ext_ip,
            ext_port,
            tunnel,
        }
    }
    fn outside(d: &SessionData) -> FlowKey {
        d.outside()
    }
    fn inside(d: &SessionData) -> FlowKey {
        d.inside
    }
    fn data_of(s: &Snapshot) -> SessionData {
        s.data()
    }
    fn publish(slot: &Session, d: &SessionData, flags: u8, now: u32) -> u32 {
        slot.publish(d, flags, now)
    }
    #[inline(always)]
    fn read(slot: &Session) -> Option<Snapshot> {
        slot.read()
    }
    #[inline(always)]
    fn generation(s: &Snapshot) -> u32 {
        s.generation
    }
    #[inline(always)]
    fn is_inside(s: &Snapshot, k: &FlowKey) -> bool {
        s.binding().is_inside(k)
    }
    #[inline(always)]
    fn is_outside(s: &Snapshot, k: &FlowKey) -> bool {
        s.is_outside(k)
    }
}

impl Family for V6 {
    type Key = FlowKey6;
    type Addr = u128;
    type Data = SessionData6;
    type Snap = Snapshot6;
    type Slot = Session6;

    #[inline(always)]
    fn slot<'a>(_: &'a [Session], v6: &'a [Session6], base: u32, idx: u32) -> Option<&'a Session6> {
        v6.get(idx.checked_sub(base)? as usize)
    }
    fn pick<T>(_: T, v6: T) -> T {
        v6
    }
    fn retire_now(slot: &Session6) {
        slot.retire_now()
    }
    fn touch(slot: &Session6, generation: u32, now: u32, update: impl Fn(u8) -> u8) -> bool {
        slot.touch(generation, now, update)
    }
    fn owner_entry(slot: &Session6) -> Entry {
        Entry::V6(slot.owner_data())
    }
    fn slot_state(slot: &Session6) -> State {
        slot.state()
    }

    #[inline(always)]
    fn hash(h: &FlowHasher, k: &FlowKey6) -> u64 {
        h.hash6(k)
    }
    #[inline(always)]
    fn reply_at(inside: &FlowKey6, ext_ip: u128, ext_port: u16) -> FlowKey6 {
        inside.reply_at(ext_ip, ext_port)
    }
    fn data(inside: FlowKey6, ext_ip: u128, ext_port: u16, tunnel: TunnelEndpoint) -> SessionData6 {
        SessionData6 {
            inside,
            ext_ip,
            ext_port,
            tunnel,
        }
    }
    fn outside(d: &SessionData6) -> FlowKey6 {
        d.outside()
    }
    fn inside(d: &SessionData6) -> FlowKey6 {
        d.inside
    }
    fn data_of(s: &Snapshot6) -> SessionData6 {
        s.data()
    }
    fn publish(slot: &Session6, d: &SessionData6, flags: u8, now: u32) -> u32 {
        slot.publish(d, flags, now)
    }
    #[inline(always)]
    fn read(slot: &Session6) -> Option<Snapshot6> {
        slot.read()
    }
    #[inline(always)]
    fn generation(s: &Snapshot6) -> u32 {
        s.generation
    }
    #[inline(always)]
    fn is_inside(s: &Snapshot6, k: &FlowKey6) -> bool {
        s.binding().is_inside(k)
    }
    #[inline(always)]
    fn is_outside(s: &Snapshot6, k: &FlowKey6) -> bool {
        s.is_outside(k)
    }
}
