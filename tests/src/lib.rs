//! Shared helpers of the end-to-end tests in `tests/tests/`: network namespaces first.

pub mod netns;
