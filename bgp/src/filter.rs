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
        let low = ge.unwrap_or(prefix.length());
        let high = le.unwrap_or(if ge.is_some() { 32 } else { prefix.length() });
        if low < prefix.length() || high > 32 || low > high {
            return Err(format!(
                "{prefix} ge {ge:?} le {le:?}: need {} <= ge <= le <= 32",
                prefix.length()
            ));
        }
        Ok(PrefixRule { prefix, ge, le })
    }

    pub fn matches(&self, p: &Prefix) -> bool {
        let low = self.ge.unwrap_or(self.prefix.length());
        let high = self.le.unwrap_or(if self.ge.is_some() {
            32
        } else {
            self.prefix.length()
        });
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
    fn modes() {
        assert!(ImportFilter::All.accepts(&p("0.0.0.0/0")));
        assert!(!ImportFilter::None.accepts(&p("192.168.55.0/24")));
    }
}
