//! Expressions: the lazy array handle and its nodes ([`mod@array`]), where blocks come from
//! ([`source`]: in-memory arrays, generators, and the [`ChunkSource`] trait
//! files implement; [`random`]: seeded random arrays, permutations and choices), and how expressions become task graphs and run ([`lower`]: lowering from
//! the requested blocks, blockwise fusion, sinks, `compute`/`store`/`persist`), how they
//! are drawn ([`visualize`]: the graph of operations and the task graph, through Graphviz);
//! blocks travel between the processes of a distributed run through encoders registered with
//! `dag_core::wire` (`wire`, private).
//!
//! [`ChunkSource`]: crate::ChunkSource

pub mod array;
mod counter_rng;
pub mod lower;
pub mod random;
pub mod source;
pub mod visualize;
pub(crate) mod wire;
