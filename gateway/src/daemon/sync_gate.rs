//! When a member of a gateway set may announce its egress IPs, as far as its sessions go: a
//! joining node only once it holds every live peer's sessions; a node that has, keeps
//! announcing when a peer returns (it gets that peer's table, not the other way round, and it
//! may be the only one serving); a node whose BGP sessions all fell (cut off from the routers
//! and from its peers) comes back as a joiner, in sync again first.

#[derive(Debug, Default)]
pub struct SyncGate {
    synced_once: bool,
}

impl SyncGate {
    /// Takes whether every live peer's table is here now, and (asked only when it matters)
    /// whether any BGP session is up; true while the node may announce.
    pub fn observe(&mut self, in_sync_now: bool, bgp_up: impl FnOnce() -> bool) -> bool {
        self.synced_once = in_sync_now || (self.synced_once && bgp_up());
        self.synced_once
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joiner_waits_a_server_stays_and_a_node_cut_off_joins_again() {
        let mut g = SyncGate::default();
        // Joining: not before the peers' tables are here, BGP up or not.
        assert!(!g.observe(false, || true));
        assert!(g.observe(true, || unreachable!("not asked when in sync")));
        // A peer returns (its bulk under way): still announcing while BGP is up.
        assert!(g.observe(false, || true));
        // Cut off: every BGP session down while a peer's table is missing.
        assert!(!g.observe(false, || false));
        // BGP back, the table still missing: a joiner again.
        assert!(!g.observe(false, || true));
        assert!(g.observe(true, || true));
    }
}
