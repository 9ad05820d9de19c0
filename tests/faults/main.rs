//! The fault catalogue: every way a run can fail, by topic, each asserting the error a user
//! gets and that nothing was lost, left half-written, or left running.
//!
//! - [`panics`]: panics in tasks, callbacks, values' `Drop` and sinks, under every scheduler;
//! - [`keys`]: user functions whose captured values differ never share a key (a collision is a
//!   silently wrong answer);
//! - [`sinks`]: in-place stores into what the computation reads are refused; sinks commit
//!   all together or not at all;
//! - [`sizes`]: results and persists larger than memory are refused before running;
//! - [`values`]: inputs whose results cannot be represented (integer ranges, bounds);
//!
//! `docs/architecture.md` ("Guarantees") states the promises these tests hold.

mod common;
mod keys;
mod panics;
mod sinks;
mod sizes;
mod values;
