//! End-to-end tests of the running system.
