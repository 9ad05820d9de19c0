//! The crate's error type.
//!
//! Modelled on `ndarray::ShapeError`: an [`Error`] is a [`ErrorKind`] to match on plus a message
//! a person can act on. Messages name what was wrong: both shapes of a mismatch, the axis and the
//! number of dimensions, the index and the axis length, the chunks and the shape.

use std::fmt;

/// What went wrong, without the details: for matching on the kind of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Shapes are incompatible (broadcasting, concatenation, reshaping, …).
    Shape,
    /// An axis is out of range for the number of dimensions.
    Axis,
    /// An index is out of bounds, or an indexing expression is malformed.
    Index,
    /// A chunk specification does not fit the shape.
    Chunks,
    /// A slice step is invalid (zero).
    Step,
    /// An element type is not what was expected.
    Type,
    /// Building or running the task graph failed (an error from `dag-core`).
    Graph,
    /// Reading or writing storage failed.
    Io,
    /// The operation is not supported (yet) for these arguments.
    Unsupported,
    /// A result, a persist or a plan needs more memory than is available or allowed.
    Memory,
    /// The run was cancelled (`dag_core::Cancel`).
    Cancelled,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::Shape => "shape error",
            ErrorKind::Axis => "axis error",
            ErrorKind::Index => "index error",
            ErrorKind::Chunks => "chunks error",
            ErrorKind::Step => "step error",
            ErrorKind::Type => "type error",
            ErrorKind::Graph => "graph error",
            ErrorKind::Io => "I/O error",
            ErrorKind::Unsupported => "unsupported operation",
            ErrorKind::Memory => "memory error",
            ErrorKind::Cancelled => "cancelled",
        };
        f.write_str(s)
    }
}

/// The error type of this crate: a kind and a message naming what was wrong.
///
/// ```
/// use blockarray::{Chunks, ErrorKind};
///
/// let err = Chunks::new(&[10], vec![vec![3, 3]], 8).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Chunks);
/// assert!(err.to_string().contains("(10,)"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message (the same text as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context` prepended to the message, as `"{context}: {message}"`.
    #[must_use]
    pub fn context(self, context: impl fmt::Display) -> Error {
        Error {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }

    /// A [`ErrorKind::Shape`] error.
    pub fn shape(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Shape, message)
    }

    /// A [`ErrorKind::Shape`] error about two incompatible shapes, naming both:
    /// `"{what}: shapes (2, 3) and (4,) ..."`.
    pub fn shape_mismatch(what: &str, a: &[usize], b: &[usize]) -> Error {
        Error::shape(format!(
            "{what}: shapes {} and {} are incompatible",
            fmt_shape(a),
            fmt_shape(b)
        ))
    }

    /// A [`ErrorKind::Axis`] error.
    pub fn axis(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Axis, message)
    }

    /// A [`ErrorKind::Axis`] error for `axis` out of range for an array of `ndim` dimensions.
    pub fn axis_out_of_bounds(axis: usize, ndim: usize) -> Error {
        Error::axis(format!(
            "axis {axis} is out of bounds for an array of {ndim} dimension{}",
            if ndim == 1 { "" } else { "s" }
        ))
    }

    /// A [`ErrorKind::Index`] error.
    pub fn index(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Index, message)
    }

    /// A [`ErrorKind::Index`] error for `index` out of bounds on an axis of length `len`.
    pub fn index_out_of_bounds(index: impl fmt::Display, len: usize) -> Error {
        Error::index(format!(
            "index {index} is out of bounds for an axis of length {len}"
        ))
    }

    /// A [`ErrorKind::Chunks`] error.
    pub fn chunks(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Chunks, message)
    }

    /// A [`ErrorKind::Step`] error.
    pub fn step(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Step, message)
    }

    /// A [`ErrorKind::Type`] error.
    pub fn type_error(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Type, message)
    }

    /// A [`ErrorKind::Graph`] error.
    pub fn graph(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Graph, message)
    }

    /// A [`ErrorKind::Io`] error.
    pub fn io(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Io, message)
    }

    /// A [`ErrorKind::Unsupported`] error.
    pub fn unsupported(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unsupported, message)
    }

    /// A [`ErrorKind::Memory`] error.
    pub fn memory(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Memory, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<dag_core::Error> for Error {
    fn from(err: dag_core::Error) -> Error {
        let kind = match err.kind() {
            dag_core::ErrorKind::Cancelled => ErrorKind::Cancelled,
            _ => ErrorKind::Graph,
        };
        Error::new(kind, err.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Error {
        Error::io(err.to_string())
    }
}

/// An empty vector with room for `len` elements, or an [`ErrorKind::Memory`] error naming
/// `what` and `len` when they cannot be allocated: for the lists (indices, keys) that are as
/// long as an axis of a lazy array, which may far exceed memory.
pub(crate) fn vec_with_capacity<E>(len: usize, what: &str) -> Result<Vec<E>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        Error::memory(format!(
            "{what}: a list of {len} entries cannot be allocated in memory"
        ))
    })?;
    Ok(v)
}

/// Formats a shape NumPy-style: `()`, `(4,)`, `(2, 3)`.
pub(crate) fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_owned(),
        [n] => format!("({n},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(ToString::to_string).collect();
            format!("({})", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_message() {
        let e = Error::new(ErrorKind::Io, "disk full");
        assert_eq!(e.to_string(), "disk full");
        assert_eq!(e.message(), "disk full");
        assert_eq!(e.kind(), ErrorKind::Io);
    }

    #[test]
    fn helpers_set_the_kind() {
        assert_eq!(Error::shape("x").kind(), ErrorKind::Shape);
        assert_eq!(Error::axis("x").kind(), ErrorKind::Axis);
        assert_eq!(Error::index("x").kind(), ErrorKind::Index);
        assert_eq!(Error::chunks("x").kind(), ErrorKind::Chunks);
        assert_eq!(Error::step("x").kind(), ErrorKind::Step);
        assert_eq!(Error::type_error("x").kind(), ErrorKind::Type);
        assert_eq!(Error::graph("x").kind(), ErrorKind::Graph);
        assert_eq!(Error::io("x").kind(), ErrorKind::Io);
        assert_eq!(Error::unsupported("x").kind(), ErrorKind::Unsupported);
        assert_eq!(Error::memory("x").kind(), ErrorKind::Memory);
    }

    #[test]
    fn messages_name_the_details() {
        let e = Error::shape_mismatch("cannot broadcast", &[2, 3], &[4]);
        assert_eq!(e.kind(), ErrorKind::Shape);
        assert!(e.to_string().contains("(2, 3)"), "{e}");
        assert!(e.to_string().contains("(4,)"), "{e}");

        let e = Error::axis_out_of_bounds(3, 2);
        assert_eq!(e.kind(), ErrorKind::Axis);
        assert_eq!(
            e.to_string(),
            "axis 3 is out of bounds for an array of 2 dimensions"
        );
        assert_eq!(
            Error::axis_out_of_bounds(1, 1).to_string(),
            "axis 1 is out of bounds for an array of 1 dimension"
        );

        let e = Error::index_out_of_bounds(-11, 10);
        assert_eq!(e.kind(), ErrorKind::Index);
        assert_eq!(
            e.to_string(),
            "index -11 is out of bounds for an axis of length 10"
        );
    }

    #[test]
    fn context_prepends() {
        let e = Error::index_out_of_bounds(5, 3).context("axis 1");
        assert_eq!(e.kind(), ErrorKind::Index);
        assert_eq!(
            e.to_string(),
            "axis 1: index 5 is out of bounds for an axis of length 3"
        );
    }

    #[test]
    fn from_dag_core_error_keeps_message() {
        let inner = dag_core::Error::Scheduler("no threads".to_owned());
        let text = inner.to_string();
        let e: Error = inner.into();
        assert_eq!(e.kind(), ErrorKind::Graph);
        assert_eq!(e.to_string(), text);
    }

    #[test]
    fn from_io_error() {
        let e: Error = std::io::Error::other("boom").into();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.to_string().contains("boom"));
    }

    #[test]
    fn shapes_format_like_numpy() {
        assert_eq!(fmt_shape(&[]), "()");
        assert_eq!(fmt_shape(&[4]), "(4,)");
        assert_eq!(fmt_shape(&[2, 3, 0]), "(2, 3, 0)");
    }

    #[test]
    fn error_is_std_error_and_send_sync() {
        fn assert_traits<T: std::error::Error + Send + Sync + 'static>() {}
        assert_traits::<Error>();
        assert_eq!(ErrorKind::Chunks.to_string(), "chunks error");
    }
}
