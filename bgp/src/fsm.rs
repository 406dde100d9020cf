//! The BGP session state machine of RFC 4271 section 8, sans I/O: a `Neighbor` takes events
//! (start, stop, connection up or lost, message received, time passing) and returns outputs
//! (connect, send, close, session up or down, routes received). The caller owns sockets and
//! clocks; tests drive it with plain values.
//!
//! A neighbour may briefly have two TCP connections (ours and the peer's); each runs its own
//! OPEN exchange and the collision rule of RFC 4271 6.8 keeps one.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::wire::{
    Capability, Codec, Family, Message, Notification, NotificationCode, Open, RouteRefresh, Update,
    AS_TRANS,
};

/// The large hold time used until the peer's OPEN arrives (RFC 4271 8.2.2: "4 minutes").
const OPEN_HOLD: Duration = Duration::from_secs(240);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborConfig {
    pub local_as: u32,
    pub peer_as: u32,
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds (0 or at least 3).
    pub hold_time: u16,
    pub connect_retry: Duration,
    /// Wait for the peer to connect; never connect out.
    pub passive: bool,
    /// The address families offered (RFC 4760 multiprotocol capabilities); the session
    /// carries those the peer offers too.
    pub families: Vec<Family>,
}

impl NeighborConfig {
    pub fn is_ibgp(&self) -> bool {
        self.local_as == self.peer_as
    }

    pub fn open(&self) -> Open {
        Open {
            version: 4,
            my_as: u16::try_from(self.local_as).unwrap_or(AS_TRANS),
            hold_time: self.hold_time,
            router_id: self.router_id,
            capabilities: self
                .families
                .iter()
                .map(|f| Capability::Multiprotocol {
                    afi: f.afi(),
                    safi: f.safi(),
                })
                .chain([
                    Capability::RouteRefresh,
                    Capability::EnhancedRouteRefresh,
                    Capability::FourOctetAs(self.local_as),
                ])
                .collect(),
        }
    }
}

/// The RFC 4271 states, as reported for the neighbour as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

pub type ConnId = u64;

/// What both OPENs agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_as: u32,
    pub peer_router_id: Ipv4Addr,
    pub hold_time: Duration,
    pub keepalive: Duration,
    pub codec: Codec,
    pub route_refresh: bool,
    /// Both sides support RFC 7313: refreshes are framed by BoRR and EoRR.
    pub enhanced_route_refresh: bool,
    /// The families both offered: what the session carries.
    pub families: Vec<Family>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    Sent(Notification),
    Received(Notification),
    ConnectionLost,
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownReason::Sent(n) => write!(f, "sent NOTIFICATION {n}"),
            DownReason::Received(n) => write!(f, "received NOTIFICATION {n}"),
            DownReason::ConnectionLost => f.write_str("connection lost"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection to the peer; report back with `connected` or `connection_lost`.
    Connect(ConnId),
    Send(ConnId, Message),
    /// Close after flushing what was sent on it.
    Close(ConnId),
    Up(Negotiated),
    Down(DownReason),
    Received(Update),
    /// The peer asked for our routes of a family again (ROUTE-REFRESH).
    RefreshRequested(Family),
    /// The peer starts re-sending its routes of a family (RFC 7313 BoRR): what it does not
    /// re-send by `RefreshEnd` is stale.
    RefreshBegin(Family),
    /// The peer finished re-sending its routes of a family (EoRR).
    RefreshEnd(Family),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Debug)]
struct Conn {
    id: ConnId,
    outgoing: bool,
    state: ConnState,
    negotiated: Option<Negotiated>,
    hold_deadline: Option<Instant>,
    keepalive_deadline: Option<Instant>,
}

#[derive(Debug)]
pub struct Neighbor {
    config: NeighborConfig,
    enabled: bool,
    conns: Vec<Conn>,
    /// Our outgoing connection attempt, before it is connected.
    connecting: Option<ConnId>,
    retry_at: Option<Instant>,
    next_id: ConnId,
    last_down: Option<DownReason>,
    flaps: u64,
    established_since: Option<Instant>,
}

impl Neighbor {
    pub fn new(config: NeighborConfig) -> Self {
        Neighbor {
            config,
            enabled: false,
            conns: Vec::new(),
            connecting: None,
            retry_at: None,
            next_id: 1,
            last_down: None,
            flaps: 0,
            established_since: None,
        }
    }

    pub fn config(&self) -> &NeighborConfig {
        &self.config
    }

    pub fn state(&self) -> State {
        let best = self.conns.iter().map(|c| match c.state {
            ConnState::OpenSent => State::OpenSent,
            ConnState::OpenConfirm => State::OpenConfirm,
            ConnState::Established => State::Established,
        });
        match best.max() {
            Some(s) => s,
            None if self.connecting.is_some() => State::Connect,
            None if self.enabled && self.config.passive => State::Active,
            None if self.enabled && self.retry_at.is_some() => State::Active,
            None => State::Idle,
        }
    }

    /// The connection carrying the established session, with what was negotiated on it.
    pub fn established(&self) -> Option<(ConnId, &Negotiated)> {
        self.conns
            .iter()
            .find(|c| c.state == ConnState::Established)
            .and_then(|c| Some((c.id, c.negotiated.as_ref()?)))
    }

    pub fn established_since(&self) -> Option<Instant> {
        self.established_since
    }

    pub fn last_down(&self) -> Option<&DownReason> {
        self.last_down.as_ref()
    }

    /// Times the session left Established.
    pub fn flaps(&self) -> u64 {
        self.flaps
    }

    /// ManualStart (RFC 4271 8.1.2 event 1, or event 4 when passive).
    pub fn start(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if !self.enabled {
            self.enabled = true;
            self.try_connect(now, &mut out);
        }
        out
    }

    /// ManualStop: NOTIFICATION on every open connection, then close. Routes are gone.
    pub fn stop(&mut self, notification: Notification) -> Vec<Output> {
        self.enabled = false;
        self.retry_at = None;
        let mut out = Vec::new();
        if let Some(id) = self.connecting.take() {
            out.push(Output::Close(id));
        }
        self.close_all(notification, &mut out);
        out
    }

    /// Drops the session now (BFD down, configuration change) and reconnects after the retry
    /// interval.
    pub fn reset(&mut self, notification: Notification, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(id) = self.connecting.take() {
            out.push(Output::Close(id));
        }
        self.close_all(notification, &mut out);
        if self.enabled {
            self.retry_at = Some(now + self.config.connect_retry);
        }
        out
    }

    fn close_all(&mut self, notification: Notification, out: &mut Vec<Output>) {
        for conn in std::mem::take(&mut self.conns) {
            out.push(Output::Send(
                conn.id,
                Message::Notification(notification.clone()),
            ));
            out.push(Output::Close(conn.id));
            if conn.state == ConnState::Established {
                self.went_down(DownReason::Sent(notification.clone()), out);
            }
        }
    }

    fn try_connect(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.retry_at = None;
        if !self.enabled
            || self.config.passive
            || self.connecting.is_some()
            || !self.conns.is_empty()
        {
            return;
        }
        let id = self.alloc_id();
        self.connecting = Some(id);
        // Connect-state ConnectRetryTimer: a connect that hangs is abandoned and retried.
        self.retry_at = Some(now + self.config.connect_retry);
        out.push(Output::Connect(id));
    }

    fn alloc_id(&mut self) -> ConnId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Our outgoing connection `id` is up.
    pub fn connected(&mut self, id: ConnId, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.connecting != Some(id) {
            out.push(Output::Close(id));
            return out;
        }
        self.connecting = None;
        self.retry_at = None;
        self.open_conn(id, true, now, &mut out);
        out
    }

    /// The peer connected to us. Returns the id the caller uses for that socket, or `None`
    /// (with outputs empty) when the connection should be closed at once.
    pub fn accepted(&mut self, now: Instant) -> Option<(ConnId, Vec<Output>)> {
        if !self.enabled || self.conns.len() >= 2 {
            return None;
        }
        let id = self.alloc_id();
        let mut out = Vec::new();
        self.open_conn(id, false, now, &mut out);
        Some((id, out))
    }

    fn open_conn(&mut self, id: ConnId, outgoing: bool, now: Instant, out: &mut Vec<Output>) {
        out.push(Output::Send(id, Message::Open(self.config.open())));
        self.conns.push(Conn {
            id,
            outgoing,
            state: ConnState::OpenSent,
            negotiated: None,
            hold_deadline: Some(now + OPEN_HOLD),
            keepalive_deadline: None,
        });
    }

    /// The connection failed to connect, was closed by the peer, or broke.
    pub fn connection_lost(&mut self, id: ConnId, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.connecting == Some(id) {
            self.connecting = None;
        }
        if let Some(i) = self.conns.iter().position(|c| c.id == id) {
            let conn = self.conns.swap_remove(i);
            if conn.state == ConnState::Established {
                self.went_down(DownReason::ConnectionLost, &mut out);
            }
        }
        self.schedule_retry(now);
        out
    }

    fn schedule_retry(&mut self, now: Instant) {
        if self.enabled
            && self.conns.is_empty()
            && self.connecting.is_none()
            && !self.config.passive
        {
            self.retry_at = Some(now + self.config.connect_retry);
        }
    }

    /// A message (or the NOTIFICATION its decoding produced) arrived on connection `id`.
    pub fn received(
        &mut self,
        id: ConnId,
        msg: Result<Message, Notification>,
        now: Instant,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(i) = self.conns.iter().position(|c| c.id == id) else {
            return out;
        };
        let msg = match msg {
            Ok(msg) => msg,
            Err(notification) => {
                self.fail(i, notification, now, &mut out);
                return out;
            }
        };
        let state = self.conns[i].state;
        match (state, msg) {
            (_, Message::Notification(n)) => {
                let conn = self.conns.swap_remove(i);
                out.push(Output::Close(conn.id));
                if conn.state == ConnState::Established {
                    self.went_down(DownReason::Received(n), &mut out);
                } else {
                    self.last_down = Some(DownReason::Received(n));
                }
                self.schedule_retry(now);
            }
            (ConnState::OpenSent, Message::Open(open)) => {
                self.open_received(i, open, now, &mut out)
            }
            (ConnState::OpenConfirm, Message::Keepalive) => {
                let conn = &mut self.conns[i];
                conn.state = ConnState::Established;
                let negotiated = conn.negotiated.clone().expect("set in OpenConfirm");
                Self::restart_hold(conn, now);
                self.established_since = Some(now);
                out.push(Output::Up(negotiated));
            }
            (ConnState::Established, Message::Keepalive) => {
                Self::restart_hold(&mut self.conns[i], now)
            }
            (ConnState::Established, Message::Update(update)) => {
                Self::restart_hold(&mut self.conns[i], now);
                out.push(Output::Received(update));
            }
            (ConnState::Established, Message::RouteRefresh(rr)) => {
                Self::restart_hold(&mut self.conns[i], now);
                // A family the session does not carry is ignored (RFC 2918 4).
                let carried = Family::from_afi_safi(rr.afi, rr.safi).filter(|f| {
                    let negotiated = self.conns[i].negotiated.as_ref();
                    negotiated.is_some_and(|n| n.families.contains(f))
                });
                if let Some(f) = carried {
                    match rr.subtype {
                        RouteRefresh::NORMAL => out.push(Output::RefreshRequested(f)),
                        RouteRefresh::BEGIN_OF_RIB => out.push(Output::RefreshBegin(f)),
                        RouteRefresh::END_OF_RIB => out.push(Output::RefreshEnd(f)),
                        // RFC 7313 5: other subtypes are ignored.
                        _ => {}
                    }
                }
            }
            (state, _) => {
                // RFC 6608 subcodes: unexpected message in OpenSent / OpenConfirm / Established.
                let subcode = match state {
                    ConnState::OpenSent => 1,
                    ConnState::OpenConfirm => 2,
                    ConnState::Established => 3,
                };
                self.fail(
                    i,
                    Notification::new(NotificationCode::FSM, subcode, Vec::new()),
                    now,
                    &mut out,
                );
            }
        }
        out
    }

    fn fail(&mut self, i: usize, notification: Notification, now: Instant, out: &mut Vec<Output>) {
        let conn = self.conns.swap_remove(i);
        out.push(Output::Send(
            conn.id,
            Message::Notification(notification.clone()),
        ));
        out.push(Output::Close(conn.id));
        if conn.state == ConnState::Established {
            self.went_down(DownReason::Sent(notification), out);
        } else {
            self.last_down = Some(DownReason::Sent(notification));
        }
        self.schedule_retry(now);
    }

    fn went_down(&mut self, reason: DownReason, out: &mut Vec<Output>) {
        self.flaps += 1;
        self.established_since = None;
        self.last_down = Some(reason.clone());
        out.push(Output::Down(reason));
    }

    fn restart_hold(conn: &mut Conn, now: Instant) {
        if let Some(n) = &conn.negotiated {
            conn.hold_deadline = (!n.hold_time.is_zero()).then(|| now + n.hold_time);
        }
    }

    fn open_received(&mut self, i: usize, open: Open, now: Instant, out: &mut Vec<Output>) {
        if let Err(n) = self.check_open(&open) {
            self.fail(i, n, now, out);
            return;
        }
        // Collision (RFC 4271 6.8): an established session wins; between two OpenConfirm
        // connections, the one opened by the speaker with the higher BGP identifier wins.
        let this_id = self.conns[i].id;
        let this_outgoing = self.conns[i].outgoing;
        for j in 0..self.conns.len() {
            let other = &self.conns[j];
            if j == i || other.state == ConnState::OpenSent {
                continue;
            }
            let keep_this = other.state != ConnState::Established && {
                let ours_wins = u32::from(self.config.router_id) > u32::from(open.router_id);
                this_outgoing == ours_wins
            };
            let loser = if keep_this { j } else { i };
            self.fail(
                loser,
                Notification::cease(Notification::CEASE_COLLISION),
                now,
                out,
            );
            if !keep_this {
                return;
            }
            break;
        }
        let Some(i) = self.conns.iter().position(|c| c.id == this_id) else {
            return;
        };
        let proposed = Duration::from_secs(u64::from(self.config.hold_time));
        let hold_time = proposed.min(Duration::from_secs(u64::from(open.hold_time)));
        let four = open.four_octet_as().is_some();
        let negotiated = Negotiated {
            peer_as: open.asn(),
            peer_router_id: open.router_id,
            hold_time,
            keepalive: hold_time / 3,
            codec: Codec {
                four_octet_as: four,
            },
            route_refresh: open.has(&Capability::RouteRefresh),
            enhanced_route_refresh: open.has(&Capability::EnhancedRouteRefresh),
            families: self.common_families(&open),
        };
        let conn = &mut self.conns[i];
        conn.state = ConnState::OpenConfirm;
        conn.negotiated = Some(negotiated);
        Self::restart_hold(conn, now);
        Self::send_keepalive(conn, now, out);
    }

    fn send_keepalive(conn: &mut Conn, now: Instant, out: &mut Vec<Output>) {
        out.push(Output::Send(conn.id, Message::Keepalive));
        let keepalive = conn
            .negotiated
            .as_ref()
            .map_or(Duration::ZERO, |n| n.keepalive);
        conn.keepalive_deadline = (!keepalive.is_zero()).then(|| now + keepalive);
    }

    /// RFC 4271 6.2 checks that need the configuration (the codec did the syntax).
    fn check_open(&self, open: &Open) -> Result<(), Notification> {
        let open_error =
            |sub: u8, data: Vec<u8>| Notification::new(NotificationCode::OPEN_MESSAGE, sub, data);
        if open.asn() != self.config.peer_as {
            return Err(open_error(2, open.my_as.to_be_bytes().to_vec()));
        }
        let id = open.router_id;
        if id.is_unspecified() || (self.config.is_ibgp() && id == self.config.router_id) {
            return Err(open_error(3, id.octets().to_vec()));
        }
        if open.hold_time == 1 || open.hold_time == 2 {
            return Err(open_error(6, Vec::new()));
        }
        // The session must carry one of our families.
        if self.common_families(open).is_empty() {
            let mut data = Vec::new();
            for f in &self.config.families {
                data.extend_from_slice(&[1, 4]);
                data.extend_from_slice(&f.afi().to_be_bytes());
                data.extend_from_slice(&[0, f.safi()]);
            }
            return Err(open_error(7, data));
        }
        Ok(())
    }

    /// Our families the peer's OPEN offers too; a peer without multiprotocol capabilities
    /// speaks IPv4 unicast alone (RFC 4760 8).
    fn common_families(&self, open: &Open) -> Vec<Family> {
        let theirs: Vec<Family> = open
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol { afi, safi } => Family::from_afi_safi(*afi, *safi),
                _ => None,
            })
            .collect();
        let lists_any = open
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::Multiprotocol { .. }));
        self.config
            .families
            .iter()
            .copied()
            .filter(|f| theirs.contains(f) || (!lists_any && *f == Family::Ipv4))
            .collect()
    }

    /// Sends an UPDATE on the established session; `false` when there is none.
    pub fn send_update(&mut self, update: Update, now: Instant, out: &mut Vec<Output>) -> bool {
        self.send(Message::Update(update), now, out)
    }

    /// Sends BoRR or EoRR (RFC 7313) around a re-advertisement, when the peer supports it.
    pub fn send_refresh_marker(
        &mut self,
        family: Family,
        subtype: u8,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> bool {
        let enhanced = self
            .established()
            .is_some_and(|(_, n)| n.enhanced_route_refresh);
        let marker = RouteRefresh {
            afi: family.afi(),
            subtype,
            safi: family.safi(),
        };
        enhanced && self.send(Message::RouteRefresh(marker), now, out)
    }

    fn send(&mut self, msg: Message, now: Instant, out: &mut Vec<Output>) -> bool {
        let Some(conn) = self
            .conns
            .iter_mut()
            .find(|c| c.state == ConnState::Established)
        else {
            return false;
        };
        out.push(Output::Send(conn.id, msg));
        // Any message restarts the peer's hold timer, so the next KEEPALIVE can wait.
        let keepalive = conn
            .negotiated
            .as_ref()
            .map_or(Duration::ZERO, |n| n.keepalive);
        conn.keepalive_deadline = (!keepalive.is_zero()).then(|| now + keepalive);
        true
    }

    /// Fires the timers due at `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.retry_at.is_some_and(|t| t <= now) {
            if let Some(id) = self.connecting.take() {
                out.push(Output::Close(id));
            }
            self.try_connect(now, &mut out);
        }
        let mut i = 0;
        while i < self.conns.len() {
            let conn = &mut self.conns[i];
            if conn.hold_deadline.is_some_and(|t| t <= now) {
                self.fail(
                    i,
                    Notification::new(NotificationCode::HOLD_TIMER_EXPIRED, 0, Vec::new()),
                    now,
                    &mut out,
                );
                continue;
            }
            if conn.keepalive_deadline.is_some_and(|t| t <= now) {
                Self::send_keepalive(conn, now, &mut out);
            }
            i += 1;
        }
        out
    }

    /// When `poll` next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let conns = self
            .conns
            .iter()
            .flat_map(|c| [c.hold_deadline, c.keepalive_deadline]);
        conns.chain([self.retry_at]).flatten().min()
    }
}

#[cfg(test)]
mod tests;
