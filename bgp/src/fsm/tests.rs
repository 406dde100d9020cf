use super::*;
use crate::wire::RouteRefresh;

fn config() -> NeighborConfig {
    NeighborConfig {
        local_as: 64512,
        peer_as: 64512,
        router_id: Ipv4Addr::new(192, 168, 99, 23),
        hold_time: 9,
        connect_retry: Duration::from_secs(5),
        passive: false,
        families: vec![Family::Ipv4],
    }
}

fn peer_open(router_id: Ipv4Addr, hold: u16) -> Open {
    Open {
        version: 4,
        my_as: 64512,
        hold_time: hold,
        router_id,
        capabilities: vec![
            Capability::Multiprotocol { afi: 1, safi: 1 },
            Capability::RouteRefresh,
            Capability::FourOctetAs(64512),
        ],
    }
}

const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 168, 99, 12);

fn sent(out: &[Output]) -> Vec<(ConnId, &Message)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(id, m) => Some((*id, m)),
            _ => None,
        })
        .collect()
}

/// Start, connect, exchange OPEN and KEEPALIVE: returns the neighbour, the connection and the
/// time it came up.
fn established() -> (Neighbor, ConnId, Instant) {
    let t0 = Instant::now();
    let mut n = Neighbor::new(config());
    let out = n.start(t0);
    let [Output::Connect(id)] = out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(n.state(), State::Connect);
    let out = n.connected(id, t0);
    assert!(matches!(sent(&out)[..], [(i, Message::Open(o))] if i == id && o.hold_time == 9));
    assert_eq!(n.state(), State::OpenSent);
    let out = n.received(id, Ok(Message::Open(peer_open(ROUTER, 90))), t0);
    assert_eq!(sent(&out), vec![(id, &Message::Keepalive)]);
    assert_eq!(n.state(), State::OpenConfirm);
    let out = n.received(id, Ok(Message::Keepalive), t0);
    let [Output::Up(neg)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        neg.hold_time,
        Duration::from_secs(9),
        "the smaller hold time wins"
    );
    assert_eq!(neg.keepalive, Duration::from_secs(3));
    assert!(neg.codec.four_octet_as && neg.route_refresh);
    assert_eq!(n.state(), State::Established);
    (n, id, t0)
}

#[test]
fn handshake_to_established() {
    let (n, id, _) = established();
    assert_eq!(n.established().map(|(i, _)| i), Some(id));
}

#[test]
fn keepalives_every_third_of_hold_and_hold_expiry() {
    let (mut n, id, t0) = established();
    assert_eq!(n.next_deadline(), Some(t0 + Duration::from_secs(3)));
    let out = n.poll(t0 + Duration::from_secs(3));
    assert_eq!(sent(&out), vec![(id, &Message::Keepalive)]);
    // Keepalives from the peer hold the session.
    assert!(n
        .received(id, Ok(Message::Keepalive), t0 + Duration::from_secs(8))
        .is_empty());
    n.poll(t0 + Duration::from_secs(10));
    assert_eq!(n.state(), State::Established);
    // Silence for the hold time: NOTIFICATION 4/0, close, down, retry later.
    let out = n.poll(t0 + Duration::from_secs(17));
    assert!(sent(&out)
        .iter()
        .any(|(_, m)| matches!(m, Message::Notification(x) if x.code == 4)));
    assert!(out.contains(&Output::Close(id)));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Down(DownReason::Sent(x)) if x.code == 4)));
    assert_eq!(n.state(), State::Active);
    assert_eq!(n.flaps(), 1);
    let out = n.poll(t0 + Duration::from_secs(22));
    assert!(matches!(out[..], [Output::Connect(_)]), "{out:?}");
}

#[test]
fn updates_and_route_refresh_pass_through() {
    let (mut n, id, t0) = established();
    let update = Update {
        withdrawn: vec!["10.0.0.0/8".parse().unwrap()],
        ..Update::default()
    };
    let out = n.received(id, Ok(Message::Update(update.clone())), t0);
    assert_eq!(out, vec![Output::Received(update.clone())]);
    let rr = RouteRefresh {
        afi: 1,
        subtype: 0,
        safi: 1,
    };
    assert_eq!(
        n.received(id, Ok(Message::RouteRefresh(rr)), t0),
        vec![Output::RefreshRequested(Family::Ipv4)]
    );
    for (subtype, expected) in [
        (1, vec![Output::RefreshBegin(Family::Ipv4)]),
        (2, vec![Output::RefreshEnd(Family::Ipv4)]),
        (7, vec![]),
    ] {
        let rr = RouteRefresh {
            afi: 1,
            subtype,
            safi: 1,
        };
        assert_eq!(n.received(id, Ok(Message::RouteRefresh(rr)), t0), expected);
    }
    // The peer's OPEN (peer_open) lacks enhanced route refresh: no BoRR from us.
    let mut out = Vec::new();
    assert!(!n.send_refresh_marker(Family::Ipv4, 1, t0, &mut out));
    assert!(out.is_empty());
    let mut out = Vec::new();
    assert!(n.send_update(update.clone(), t0, &mut out));
    assert_eq!(sent(&out), vec![(id, &Message::Update(update))]);
}

#[test]
fn notification_and_connection_loss_take_the_session_down() {
    let (mut n, id, t0) = established();
    let cease = Notification::cease(2);
    let out = n.received(id, Ok(Message::Notification(cease.clone())), t0);
    assert_eq!(
        out,
        vec![Output::Close(id), Output::Down(DownReason::Received(cease))]
    );
    assert_eq!(n.next_deadline(), Some(t0 + Duration::from_secs(5)));

    let (mut n, id, t0) = established();
    let out = n.connection_lost(id, t0);
    assert_eq!(out, vec![Output::Down(DownReason::ConnectionLost)]);
    assert!(n.established().is_none());
}

#[test]
fn decode_errors_are_sent_and_reset() {
    let (mut n, id, t0) = established();
    let bad = Notification::new(3, 10, Vec::new());
    let out = n.received(id, Err(bad.clone()), t0);
    assert_eq!(sent(&out), vec![(id, &Message::Notification(bad.clone()))]);
    assert!(out.contains(&Output::Down(DownReason::Sent(bad))));
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let (mut n, id, t0) = established();
    let out = n.received(id, Ok(Message::Open(peer_open(ROUTER, 9))), t0);
    assert!(sent(&out).contains(&(id, &Message::Notification(Notification::new(5, 3, vec![])))));

    let t0 = Instant::now();
    let mut n = Neighbor::new(config());
    let [Output::Connect(id)] = n.start(t0)[..] else {
        panic!()
    };
    n.connected(id, t0);
    let out = n.received(id, Ok(Message::Update(Update::default())), t0);
    assert!(sent(&out).contains(&(id, &Message::Notification(Notification::new(5, 1, vec![])))));
}

#[test]
fn open_checks() {
    let cases = [
        (
            Open {
                my_as: 65000,
                capabilities: vec![],
                ..peer_open(ROUTER, 9)
            },
            (2, 2),
        ),
        (peer_open(Ipv4Addr::UNSPECIFIED, 9), (2, 3)),
        (peer_open(config().router_id, 9), (2, 3)),
        (peer_open(ROUTER, 2), (2, 6)),
        (
            Open {
                capabilities: vec![Capability::Multiprotocol { afi: 2, safi: 1 }],
                ..peer_open(ROUTER, 9)
            },
            (2, 7),
        ),
    ];
    for (open, (code, sub)) in cases {
        let t0 = Instant::now();
        let mut n = Neighbor::new(config());
        let [Output::Connect(id)] = n.start(t0)[..] else {
            panic!()
        };
        n.connected(id, t0);
        let out = n.received(id, Ok(Message::Open(open.clone())), t0);
        let got = sent(&out);
        assert!(
            matches!(got[..], [(_, Message::Notification(ref x))] if x.code == code && x.subcode == sub),
            "{open:?}: {out:?}"
        );
        assert_eq!(n.state(), State::Active);
    }
}

#[test]
fn hold_time_zero_means_no_keepalives() {
    let t0 = Instant::now();
    let mut n = Neighbor::new(config());
    let [Output::Connect(id)] = n.start(t0)[..] else {
        panic!()
    };
    n.connected(id, t0);
    n.received(id, Ok(Message::Open(peer_open(ROUTER, 0))), t0);
    n.received(id, Ok(Message::Keepalive), t0);
    assert_eq!(n.state(), State::Established);
    assert_eq!(n.next_deadline(), None);
}

fn collide(local: Ipv4Addr, remote: Ipv4Addr) -> (bool, Neighbor, Vec<Output>) {
    let t0 = Instant::now();
    let mut n = Neighbor::new(NeighborConfig {
        router_id: local,
        ..config()
    });
    let [Output::Connect(ours)] = n.start(t0)[..] else {
        panic!()
    };
    n.connected(ours, t0);
    let (theirs, _) = n.accepted(t0).expect("accepts a second connection");
    let mut all = n.received(ours, Ok(Message::Open(peer_open(remote, 9))), t0);
    all.extend(n.received(theirs, Ok(Message::Open(peer_open(remote, 9))), t0));
    let closed_ours = all.contains(&Output::Close(ours));
    let closed_theirs = all.contains(&Output::Close(theirs));
    assert!(
        closed_ours != closed_theirs,
        "exactly one connection closes: {all:?}"
    );
    assert!(all
        .iter()
        .any(|o| matches!(o, Output::Send(_, Message::Notification(x)) if x.subcode == 7)));
    (closed_theirs, n, all)
}

#[test]
fn collision_keeps_the_connection_of_the_higher_identifier() {
    let (kept_ours, n, _) = collide(Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::new(10, 0, 0, 1));
    assert!(kept_ours);
    assert_eq!(n.state(), State::OpenConfirm);
    let (kept_ours, _, _) = collide(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 9));
    assert!(!kept_ours);
}

#[test]
fn established_session_wins_over_a_new_connection() {
    let (mut n, id, t0) = established();
    let (new, _) = n.accepted(t0).unwrap();
    let out = n.received(new, Ok(Message::Open(peer_open(ROUTER, 9))), t0);
    assert!(out.contains(&Output::Close(new)) && !out.contains(&Output::Close(id)));
    assert_eq!(n.established().map(|(i, _)| i), Some(id));
}

#[test]
fn stop_sends_cease_and_stays_idle() {
    let (mut n, id, t0) = established();
    let out = n.stop(Notification::cease(2));
    assert_eq!(
        sent(&out),
        vec![(id, &Message::Notification(Notification::cease(2)))]
    );
    assert!(out.contains(&Output::Close(id)));
    assert_eq!(n.state(), State::Idle);
    assert!(n.poll(t0 + Duration::from_secs(60)).is_empty());
    assert!(
        n.accepted(t0).is_none(),
        "a stopped neighbour refuses connections"
    );
}

#[test]
fn passive_neighbours_never_connect() {
    let t0 = Instant::now();
    let mut n = Neighbor::new(NeighborConfig {
        passive: true,
        ..config()
    });
    assert!(n.start(t0).is_empty());
    assert_eq!(n.state(), State::Active);
    assert!(n.poll(t0 + Duration::from_secs(600)).is_empty());
    let (id, out) = n.accepted(t0).unwrap();
    assert!(matches!(sent(&out)[..], [(i, Message::Open(_))] if i == id));
}

#[test]
fn hung_connect_is_retried() {
    let t0 = Instant::now();
    let mut n = Neighbor::new(config());
    let [Output::Connect(first)] = n.start(t0)[..] else {
        panic!()
    };
    let out = n.poll(t0 + Duration::from_secs(5));
    assert_eq!(out[0], Output::Close(first));
    assert!(matches!(out[1], Output::Connect(second) if second != first));
}

/// Up to OPEN and KEEPALIVE with `ours` offered and the peer's OPEN listing `theirs` (as MP
/// capabilities; none listed: a peer without the capability), returning what was negotiated
/// or the NOTIFICATION sent.
fn negotiate(ours: Vec<Family>, theirs: &[(u16, u8)]) -> Result<Negotiated, Notification> {
    let t0 = Instant::now();
    let mut n = Neighbor::new(NeighborConfig {
        families: ours,
        ..config()
    });
    let [Output::Connect(id)] = n.start(t0)[..] else {
        panic!()
    };
    let out = n.connected(id, t0);
    let [(_, Message::Open(sent_open))] = sent(&out)[..] else {
        panic!("{out:?}")
    };
    let offered: Vec<(u16, u8)> = sent_open
        .capabilities
        .iter()
        .filter_map(|c| match c {
            Capability::Multiprotocol { afi, safi } => Some((*afi, *safi)),
            _ => None,
        })
        .collect();
    assert_eq!(
        offered,
        n.config()
            .families
            .iter()
            .map(|f| (f.afi(), f.safi()))
            .collect::<Vec<_>>()
    );
    let mut open = peer_open(ROUTER, 9);
    open.capabilities
        .retain(|c| !matches!(c, Capability::Multiprotocol { .. }));
    for &(afi, safi) in theirs {
        open.capabilities
            .push(Capability::Multiprotocol { afi, safi });
    }
    let out = n.received(id, Ok(Message::Open(open)), t0);
    if let [(_, Message::Notification(x))] = &sent(&out)[..] {
        return Err(x.clone());
    }
    let out = n.received(id, Ok(Message::Keepalive), t0);
    match &out[..] {
        [Output::Up(neg)] => Ok(neg.clone()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn families_are_those_both_offer() {
    use Family::{Ipv4, Ipv6};
    let both = vec![Ipv4, Ipv6];
    // Multiprotocol BGP: both families over one session.
    assert_eq!(
        negotiate(both.clone(), &[(1, 1), (2, 1)]).unwrap().families,
        both
    );
    // One session per family (FRR-K8s `disableMP: true`): the IPv6 session carries IPv6.
    assert_eq!(
        negotiate(vec![Ipv6], &[(2, 1)]).unwrap().families,
        vec![Ipv6]
    );
    assert_eq!(
        negotiate(both.clone(), &[(2, 1), (1, 128)])
            .unwrap()
            .families,
        vec![Ipv6]
    );
    // No multiprotocol capability at all means IPv4 unicast (RFC 4760 8).
    assert_eq!(negotiate(both, &[]).unwrap().families, vec![Ipv4]);
    // Nothing in common: unsupported capability, naming what we offer (RFC 5492 3).
    let n = negotiate(vec![Ipv6], &[(1, 1)]).unwrap_err();
    assert_eq!((n.code, n.subcode), (2, 7));
    assert_eq!(n.data, vec![1, 4, 0, 2, 0, 1]);
    let n = negotiate(vec![Ipv6], &[]).unwrap_err();
    assert_eq!((n.code, n.subcode), (2, 7));
}

#[test]
fn route_refresh_of_a_family_the_session_does_not_carry_is_ignored() {
    let (mut n, id, t0) = established();
    let rr = RouteRefresh {
        afi: 2,
        subtype: 0,
        safi: 1,
    };
    assert!(n.received(id, Ok(Message::RouteRefresh(rr)), t0).is_empty());
    assert_eq!(n.state(), State::Established);
}
