//! Shared helpers for the criterion benches (frame builders live in `gateway::testutil`).
