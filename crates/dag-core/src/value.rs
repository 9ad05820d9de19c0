//! Type-erased task values.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// A type a task can return, able to report its size in bytes.
///
/// The size feeds the schedulers' live-memory accounting and the `Callbacks`. The default is
/// the value's inline size; implement it for types that own heap memory.
///
/// ```
/// struct Histogram(Vec<u64>);
/// impl dag_core::Data for Histogram {
///     fn nbytes(&self) -> usize {
///         self.0.len() * 8
///     }
/// }
/// let v = dag_core::Value::new(Histogram(vec![0; 10]));
/// assert_eq!(v.nbytes(), 80);
/// ```
pub trait Data: Any + Send + Sync {
    /// Bytes this value holds (heap included).
    fn nbytes(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

macro_rules! data_prim {
    ($($t:ty),*) => {$( impl Data for $t {} )*};
}
data_prim!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64
);

impl Data for String {
    fn nbytes(&self) -> usize {
        self.len()
    }
}

impl<T: Send + Sync + 'static> Data for Vec<T> {
    fn nbytes(&self) -> usize {
        self.len() * std::mem::size_of::<T>()
    }
}

impl<T: Data> Data for Option<T> {
    fn nbytes(&self) -> usize {
        self.as_ref().map_or(0, Data::nbytes)
    }
}

impl<A: Data, B: Data> Data for (A, B) {
    fn nbytes(&self) -> usize {
        self.0.nbytes() + self.1.nbytes()
    }
}

/// `Any` plus the concrete type's name, for error messages.
trait AnyData: Any + Send + Sync {
    fn type_name(&self) -> &'static str;
}

impl<T: Any + Send + Sync> AnyData for T {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

/// A task's result: any `Send + Sync` value behind an `Arc`, with its size in bytes.
///
/// Cloning a `Value` clones the `Arc`, never the data, so handing a block from one task to the
/// next costs one atomic increment.
#[derive(Clone)]
pub struct Value {
    data: Arc<dyn AnyData>,
    nbytes: usize,
}

impl Value {
    /// Wrap a value whose size is known through [`Data`].
    pub fn new<T: Data>(value: T) -> Value {
        let nbytes = value.nbytes();
        Value {
            data: Arc::new(value),
            nbytes,
        }
    }

    /// Wrap any value, stating its size in bytes.
    ///
    /// For types from other crates that cannot implement [`Data`] here (such as `ndarray`
    /// arrays).
    pub fn with_nbytes<T: Any + Send + Sync>(value: T, nbytes: usize) -> Value {
        Value {
            data: Arc::new(value),
            nbytes,
        }
    }

    /// Wrap a value that is already shared.
    pub fn from_arc<T: Any + Send + Sync>(value: Arc<T>, nbytes: usize) -> Value {
        Value {
            data: value,
            nbytes,
        }
    }

    /// The size reported when the value was made.
    pub fn nbytes(&self) -> usize {
        self.nbytes
    }

    /// The name of the concrete type inside.
    pub fn type_name(&self) -> &'static str {
        AnyData::type_name(&*self.data)
    }

    /// The value as `&dyn Any` (its `type_id` is the concrete type's), for code that
    /// dispatches on types, such as the [`wire`](crate::wire) registry.
    pub fn as_any(&self) -> &(dyn Any + Send + Sync) {
        &*self.data
    }

    /// Whether the value is a `T`.
    pub fn is<T: Any>(&self) -> bool {
        let any: &dyn Any = &*self.data;
        any.is::<T>()
    }

    /// A reference to the value if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        let any: &dyn Any = &*self.data;
        any.downcast_ref::<T>()
    }

    /// The value as a `T`, or an error naming both types.
    pub fn get<T: Any>(&self) -> Result<&T, crate::Error> {
        self.downcast_ref::<T>()
            .ok_or_else(|| crate::Error::WrongType {
                key: None,
                expected: std::any::type_name::<T>(),
                found: self.type_name(),
            })
    }

    /// The shared value as an `Arc<T>`, or an error naming both types.
    pub fn into_arc<T: Any + Send + Sync>(self) -> Result<Arc<T>, crate::Error> {
        let found = self.type_name();
        let any: Arc<dyn Any + Send + Sync> = self.data;
        any.downcast::<T>().map_err(|_| crate::Error::WrongType {
            key: None,
            expected: std::any::type_name::<T>(),
            found,
        })
    }

    /// The value itself: moved out when this is the only reference, cloned otherwise.
    pub fn into_inner<T: Any + Send + Sync + Clone>(self) -> Result<T, crate::Error> {
        let arc = self.into_arc::<T>()?;
        Ok(Arc::try_unwrap(arc).unwrap_or_else(|shared| (*shared).clone()))
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value<{}>({} bytes)", self.type_name(), self.nbytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downcasts_and_sizes() {
        let v = Value::new(vec![1.0f64; 4]);
        assert_eq!(v.nbytes(), 32);
        assert!(v.is::<Vec<f64>>());
        assert_eq!(v.downcast_ref::<Vec<f64>>().unwrap()[3], 1.0);
        let err = v.get::<u8>().unwrap_err().to_string();
        assert!(err.contains("u8") && err.contains("Vec<f64>"), "{err}");
        assert_eq!(v.clone().into_inner::<Vec<f64>>().unwrap().len(), 4);
        assert!(v.into_arc::<String>().is_err());
    }
}
