//! Import filter shaped like FRR-K8s `toReceive.allowed`: `mode: all`, or `mode: filtered`
//! with a list of prefixes, each optionally widened by `ge`/`le` (prefix-list semantics:
//! without ge/le only the exact prefix matches).

use crate::wire::Prefix;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRule {
    pub prefix: Prefix,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

impl PrefixRule {
    /// Rejects ranges that can never match, so a typo is an error rather than a silent deny.
    pub fn new(prefix: Prefix, ge: Option<u8>, le: Option<u8>) -> Result<Self, String> {
        let rule = PrefixRule { prefix, ge, le };
        let (low, high) = rule.lengths();
        let max = prefix.family().max_len();
        if low < prefix.length() || high > max || low > high {
            return Err(format!(
                "{prefix} ge {ge:?} le {le:?}: need {} <= ge <= le <= {max}",
                prefix.length()
            ));
        }
        Ok(rule)
    }

    /// The prefix lengths matched: exactly the prefix's without ge/le; from ge up to the
    /// family's longest with ge alone.
    fn lengths(&self) -> (u8, u8) {
        let low = self.ge.unwrap_or(self.prefix.length());
        let high = self.le.unwrap_or(if self.ge.is_some() {
            self.prefix.family().max_len()
        } else {
            self.prefix.length()
        });
        (low, high)
    }

    /// Whether `p` falls under the rule (never across families).
    pub fn matches(&self, p: &Prefix) -> bool {
        let (low, high) = self.lengths();
        self.prefix.contains(p) && (low..=high).contains(&p.length())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ImportFilter {
    /// Accept nothing (FRR-K8s default when `toReceive` is absent).
    #[default]
    None,
    All,
    Filtered(Vec<PrefixRule>),
}

impl ImportFilter {
    pub fn accepts(&self, p: &Prefix) -> bool {
        match self {
            ImportFilter::None => false,
            ImportFilter::All => true,
            ImportFilter::Filtered(rules) => rules.iter().any(|r| r.matches(p)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn seed_filter_takes_only_the_server_subnet() {
        let f = ImportFilter::Filtered(vec![
            PrefixRule::new(p("192.168.55.0/24"), None, None).unwrap()
        ]);
        assert!(f.accepts(&p("192.168.55.0/24")));
        assert!(
            !f.accepts(&p("192.168.55.128/25")),
            "more specific without le"
        );
        assert!(!f.accepts(&p("192.168.0.0/16")));
        assert!(!f.accepts(&p("10.0.0.0/8")));
    }

    #[test]
    fn ge_le_ranges() {
        let r = PrefixRule::new(p("10.0.0.0/8"), Some(16), Some(24)).unwrap();
        assert!(!r.matches(&p("10.0.0.0/8")));
        assert!(r.matches(&p("10.1.0.0/16")));
        assert!(r.matches(&p("10.1.2.0/24")));
        assert!(!r.matches(&p("10.1.2.0/25")));
        assert!(!r.matches(&p("11.1.0.0/16")));
        let le_only = PrefixRule::new(p("10.0.0.0/8"), None, Some(32)).unwrap();
        assert!(le_only.matches(&p("10.0.0.0/8")) && le_only.matches(&p("10.9.9.9/32")));
        assert!(PrefixRule::new(p("10.0.0.0/8"), Some(4), None).is_err());
        assert!(PrefixRule::new(p("10.0.0.0/8"), Some(24), Some(16)).is_err());
        assert!(PrefixRule::new(p("10.0.0.0/8"), None, Some(33)).is_err());
    }

    #[test]
    fn ipv6_rules() {
        let r = PrefixRule::new(p("fd00::/16"), Some(48), None).unwrap();
        assert!(r.matches(&p("fd00:55::/48")) && r.matches(&p("fd00:55::1/128")));
        assert!(!r.matches(&p("fd00::/16")) && !r.matches(&p("fd01::/48")));
        let exact = PrefixRule::new(p("fd00:55::/64"), None, None).unwrap();
        assert!(exact.matches(&p("fd00:55::/64")) && !exact.matches(&p("fd00:55::/65")));
        assert!(PrefixRule::new(p("fd00::/16"), None, Some(129)).is_err());
        // No rule of one family matches the other's routes.
        let all4 = PrefixRule::new(p("0.0.0.0/0"), None, Some(32)).unwrap();
        assert!(!all4.matches(&p("fd00:55::/64")));
        let all6 = PrefixRule::new(p("::/0"), None, Some(128)).unwrap();
        assert!(!all6.matches(&p("192.168.55.0/24")) && all6.matches(&p("fd00:55::/64")));
    }

    #[test]
    fn modes() {
        assert!(ImportFilter::All.accepts(&p("0.0.0.0/0")));
        assert!(!ImportFilter::None.accepts(&p("192.168.55.0/24")));
    }
}
