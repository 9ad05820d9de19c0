//! The error type of graph building and execution.

use crate::Key;
use std::fmt;

/// What went wrong, without the details: for matching on the kind of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A requested output key is not in the graph.
    MissingKey,
    /// A task depends on a key that is not in the graph.
    MissingDependency,
    /// The graph has a cycle.
    Cycle,
    /// A task returned an error or panicked.
    TaskFailed,
    /// A value was not of the expected type.
    WrongType,
    /// The scheduler itself could not run (for example, no thread could be started).
    Scheduler,
    /// The run was cancelled through its [`Cancel`](crate::Cancel) token.
    Cancelled,
    /// A value had to travel to another process but could not be encoded
    /// ([`wire`](crate::wire)).
    CannotSend,
    /// Two different values were given one key.
    DuplicateKey,
}

/// Errors from building, validating and running task graphs. Every variant names the keys
/// involved.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error {
    /// A requested output key is not in the graph.
    MissingKey {
        /// The key that was asked for.
        key: Key,
    },
    /// `key` depends on `dependency`, which is not in the graph.
    MissingDependency {
        /// The task with the dangling dependency.
        key: Key,
        /// The key it needs.
        dependency: Key,
    },
    /// The graph has a cycle through these keys (the first is repeated at the end).
    Cycle {
        /// The keys along the cycle.
        keys: Vec<Key>,
    },
    /// A task returned an error or panicked.
    TaskFailed {
        /// The failing task.
        key: Key,
        /// The error or panic message.
        message: String,
        /// Whether the task panicked (rather than returning `Err`).
        panicked: bool,
    },
    /// A value was not of the expected type.
    WrongType {
        /// The key whose value had the wrong type, when known.
        key: Option<Key>,
        /// The type that was expected.
        expected: &'static str,
        /// The type that was found.
        found: &'static str,
    },
    /// The scheduler itself failed.
    Scheduler(String),
    /// The run was cancelled through its [`Cancel`](crate::Cancel) token: tasks running then
    /// finished, no other started.
    Cancelled {
        /// Tasks that had finished when the run stopped.
        done: usize,
        /// Tasks in the plan.
        total: usize,
    },
    /// The value of `key` had to travel to another process (a distributed scheduler) but
    /// could not be encoded: its type has no [`wire`](crate::wire) encoding.
    CannotSend {
        /// The task whose value could not travel.
        key: Key,
        /// The value's type.
        type_name: String,
        /// Why, and where the value was going.
        detail: String,
    },
    /// Two different values were given one key (two [`Delayed::named`](crate::Delayed::named)
    /// values of one name): equal keys must mean equal work, so they are not merged.
    DuplicateKey {
        /// The key given twice.
        key: Key,
    },
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::MissingKey { .. } => ErrorKind::MissingKey,
            Error::MissingDependency { .. } => ErrorKind::MissingDependency,
            Error::Cycle { .. } => ErrorKind::Cycle,
            Error::TaskFailed { .. } => ErrorKind::TaskFailed,
            Error::WrongType { .. } => ErrorKind::WrongType,
            Error::Scheduler(_) => ErrorKind::Scheduler,
            Error::Cancelled { .. } => ErrorKind::Cancelled,
            Error::CannotSend { .. } => ErrorKind::CannotSend,
            Error::DuplicateKey { .. } => ErrorKind::DuplicateKey,
        }
    }

    /// The key the error is about, when there is one.
    pub fn key(&self) -> Option<&Key> {
        match self {
            Error::MissingKey { key }
            | Error::MissingDependency { key, .. }
            | Error::TaskFailed { key, .. }
            | Error::CannotSend { key, .. }
            | Error::DuplicateKey { key } => Some(key),
            Error::Cycle { keys } => keys.first(),
            Error::WrongType { key, .. } => key.as_ref(),
            Error::Scheduler(_) | Error::Cancelled { .. } => None,
        }
    }

    /// The same error, attributed to `key` (used when a value read for a task has the wrong type).
    pub fn at_key(self, key: &Key) -> Error {
        match self {
            Error::WrongType {
                key: None,
                expected,
                found,
            } => Error::WrongType {
                key: Some(key.clone()),
                expected,
                found,
            },
            other => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingKey { key } => write!(f, "key {key} is not in the graph"),
            Error::MissingDependency { key, dependency } => {
                write!(
                    f,
                    "task {key} depends on {dependency}, which is not in the graph"
                )
            }
            Error::Cycle { keys } => {
                f.write_str("the graph has a cycle: ")?;
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" -> ")?;
                    }
                    write!(f, "{k}")?;
                }
                Ok(())
            }
            Error::TaskFailed {
                key,
                message,
                panicked,
            } => {
                let how = if *panicked { "panicked" } else { "failed" };
                write!(f, "task {key} {how}: {message}")
            }
            Error::WrongType {
                key,
                expected,
                found,
            } => {
                if let Some(k) = key {
                    write!(f, "value of {k} has type {found}, expected {expected}")
                } else {
                    write!(f, "value has type {found}, expected {expected}")
                }
            }
            Error::Scheduler(msg) => write!(f, "scheduler failure: {msg}"),
            Error::Cancelled { done, total } => {
                write!(f, "the run was cancelled after {done} of {total} tasks")
            }
            Error::DuplicateKey { key } => write!(
                f,
                "two different values were named {key}: give each value a key of its own"
            ),
            Error::CannotSend {
                key,
                type_name,
                detail,
            } => write!(
                f,
                "the value of {key} (a {type_name}) cannot be sent to another process: {detail}"
            ),
        }
    }
}

impl std::error::Error for Error {}
