//! The fault catalogue: every way a run can fail, by topic, each asserting the error a user
//! gets and that nothing was lost, left half-written, or left running.
//!
//! - [`panics`]: panics in tasks, callbacks, values' `Drop` and sinks, under every scheduler;
//! - [`files`]: corrupt, truncated and read-only files; HDF5 sinks that fail part-way or are
//!   slow; in-place stores into what the computation reads; multi-dataset stores whose commit
//!   fails; failed stores into files that did not exist;
//! - [`cancel`]: cancelled runs stop early, join every thread and abort every sink;
//! - [`graphs`]: empty, zero-dimensional, deep, wide and oversized graphs;
//! - [`keys`]: user functions whose captured values differ never share a key (a collision is a
//!   silently wrong answer);
//! - [`sinks`]: in-place stores into what the computation reads are refused; sinks commit
//!   all together or not at all;
//! - [`sizes`]: results and persists larger than memory are refused before running;
//! - [`values`]: inputs whose results cannot be represented (integer ranges, bounds);
//!
//! `docs/architecture.md` ("Guarantees") states the promises these tests hold.

mod cancel;
mod common;
mod files;
mod graphs;
mod keys;
mod panics;
mod sinks;
mod sizes;
mod values;
