//! Churn soak in the seed lab (`lab/seed-lab run soak`, issue 19): short UDP flows at 3000 a
//! second from one pod and TCP connections from the other for half a minute, while the pod is
//! remapped between two egress IPs, the daemon reloads its file (SIGHUP) and the other pod's
//! sessions are flushed, again and again. Afterwards (5 s timeouts) every session has expired,
//! both indexes are empty, every worker's slots are free, and the daemon's memory has not
//! grown. The 5-minute figures are in docs/overload.md.

use tests::lab::{numbers, SEED_LAB};

#[test]
fn seed_lab_soak_leaves_no_session_slot_or_memory_behind() {
    let flood = tests::workspace_bin("flood");
    let text = SEED_LAB.run(
        &["run", "soak"],
        &[("FLOOD", flood.to_str().unwrap()), ("SOAK_S", "30")],
    );
    // The churn happened: 3000 new flows a second, and each kind of change many times.
    assert!(numbers(&text, "sessions made: ")[0] >= 80_000.0, "{text}");
    let during = numbers(&text, "meanwhile: ");
    assert!(during.iter().all(|&n| n >= 10.0), "{during:?}: {text}");
    // Every TCP connection of the other pod made it through the churn.
    // "sent N in S s (R pps) (new UDP flows of POD); OK of ALL TCP connections of POD"
    let flows = numbers(&text, "the flows: ");
    let (ok, of) = (flows[flows.len() - 2], flows[flows.len() - 1]);
    assert!(of > 0.0 && ok == of, "{ok} of {of} TCP connections: {text}");
    assert_eq!(numbers(&text, "sessions left: ")[0], 0.0, "{text}");
    assert_eq!(numbers(&text, "indexed: "), [0.0, 0.0], "{text}");
    assert!(
        numbers(&text, "slots in use: ").iter().all(|&n| n == 0.0),
        "{text}"
    );
    let memory = numbers(&text, "daemon memory: ");
    assert!(
        memory[1] <= memory[0] + 2048.0,
        "the daemon grew from {} to {} KiB: {text}",
        memory[0],
        memory[1]
    );
}
