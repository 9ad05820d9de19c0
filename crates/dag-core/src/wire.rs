//! Values that leave the process: the encoding hook distributed schedulers use.
//!
//! A distributed scheduler (`sched-mpi`) moves task values between processes. dag-core does
//! not know what a value is, so types are registered here, each with an encoder (value →
//! bytes) and a decoder (bytes → value), in a process-wide registry keyed by
//! [`TypeId`]. [`encode`] frames a [`Value`] for the wire; [`decode`] rebuilds it in the
//! other process, with the same [`Value::nbytes`].
//!
//! - dag-core registers its primitive [`Data`](crate::Data) types: `()`, `bool`, `char`,
//!   every integer and float type, `String`, and `Vec`s of the numeric types. Numbers are
//!   encoded little-endian, so the format does not depend on the machine.
//! - Crates with value types of their own register them once before a run (blockarray
//!   registers its blocks of every element type when it builds a graph).
//! - A value whose type was never registered cannot travel: [`encode`] returns the type's
//!   name, and the scheduler fails the run with [`Error::CannotSend`](crate::Error::CannotSend)
//!   naming the task's key.
//!
//! Types are identified on the wire by a 64-bit hash of their
//! [`type_name`](std::any::type_name), so every process must run the same program (as SPMD
//! programs do); a tag a process does not know is an error naming it, never a wrong value.
//! Two distinct types may share a `type_name` (two versions of one crate, or function pointer
//! types that differ only in lifetimes): values of either type then cannot travel, and
//! [`encode`] says so, rather than letting the receiver decode one as the other.
//!
//! The frame of one value: its type tag (8 bytes), its `nbytes` (8 bytes), then the
//! encoder's bytes.
//!
//! ```
//! use dag_core::{Value, wire};
//!
//! struct Pair(u32, f64);
//! wire::register::<Pair>(
//!     |p, out| {
//!         wire::put_u64(out, u64::from(p.0));
//!         wire::put_u64(out, p.1.to_bits());
//!     },
//!     |r| Ok(Pair(r.u64()? as u32, f64::from_bits(r.u64()?))),
//! );
//! let mut bytes = Vec::new();
//! wire::encode(&Value::with_nbytes(Pair(3, 0.5), 16), &mut bytes).unwrap();
//! let back = wire::decode(&bytes).unwrap();
//! let p = back.get::<Pair>().unwrap();
//! assert_eq!((p.0, p.1, back.nbytes()), (3, 0.5, 16));
//!
//! // An unregistered type cannot be encoded; the error names it.
//! struct Opaque;
//! let err = wire::encode(&Value::with_nbytes(Opaque, 0), &mut bytes).unwrap_err();
//! assert!(err.contains("Opaque"), "{err}");
//! ```

use crate::{Tokenizer, Value};
use rustc_hash::{FxHashMap, FxHashSet};
use std::any::{Any, TypeId};
use std::sync::{Arc, OnceLock, RwLock};

/// Reads what an encoder wrote: numbers and byte runs, each read failing (rather than
/// panicking) when the input is too short.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "truncated value: wanted {n} bytes at offset {}, only {} left",
                    self.pos,
                    self.bytes.len() - self.pos
                )
            })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, String> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// The next `u64` as a `usize`, refused when it does not fit.
    pub fn usize(&mut self) -> Result<usize, String> {
        let v = self.u64()?;
        usize::try_from(v).map_err(|_| format!("length {v} does not fit this machine's usize"))
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.bytes[self.pos..];
        self.pos = self.bytes.len();
        out
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

/// Append `v` little-endian.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

type EncodeFn = Box<dyn Fn(&dyn Any, &mut Vec<u8>) + Send + Sync>;
type DecodeFn = Box<dyn Fn(&mut Reader<'_>, usize) -> Result<Value, String> + Send + Sync>;

struct Entry {
    name: &'static str,
    type_id: TypeId,
    tag: u64,
    encode: EncodeFn,
    decode: DecodeFn,
}

#[derive(Default)]
struct Registry {
    by_type: FxHashMap<TypeId, Arc<Entry>>,
    by_tag: FxHashMap<u64, Arc<Entry>>,
    /// Tags registered by more than one type: values of those types cannot travel.
    shared: FxHashSet<u64>,
}

fn registry() -> &'static RwLock<Registry> {
    static REGISTRY: OnceLock<RwLock<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let lock = RwLock::new(Registry::default());
        register_primitives(&mut lock.write().unwrap_or_else(|e| e.into_inner()));
        lock
    })
}

fn tag_of(name: &str) -> u64 {
    let mut t = Tokenizer::new();
    t.write_str("dag-core wire type").write_str(name);
    t.finish()
}

fn insert<T: Any + Send + Sync>(
    reg: &mut Registry,
    encode: fn(&T, &mut Vec<u8>),
    decode: fn(&mut Reader<'_>) -> Result<T, String>,
) {
    let name = std::any::type_name::<T>();
    let tag = tag_of(name);
    let entry = Arc::new(Entry {
        name,
        type_id: TypeId::of::<T>(),
        tag,
        encode: Box::new(move |any, out| {
            encode(
                any.downcast_ref::<T>().expect("looked up by this TypeId"),
                out,
            )
        }),
        decode: Box::new(move |r, nbytes| Ok(Value::with_nbytes(decode(r)?, nbytes))),
    });
    if reg
        .by_tag
        .get(&tag)
        .is_some_and(|old| old.type_id != entry.type_id)
    {
        reg.shared.insert(tag);
    }
    reg.by_type.insert(TypeId::of::<T>(), entry.clone());
    reg.by_tag.insert(tag, entry);
}

/// Make values of type `T` able to travel between processes: `encode` appends a value's
/// bytes, `decode` reads them back (and fails, with a message, on bytes it cannot accept).
/// Registering a type again replaces its functions. Cheap to call before every run.
///
/// Encoders should write contiguous data as one byte run (no per-element framing) and
/// numbers little-endian ([`put_u64`], `to_le_bytes`).
pub fn register<T: Any + Send + Sync>(
    encode: fn(&T, &mut Vec<u8>),
    decode: fn(&mut Reader<'_>) -> Result<T, String>,
) {
    let mut reg = registry().write().unwrap_or_else(|e| e.into_inner());
    insert(&mut reg, encode, decode);
}

/// Whether values of `value`'s type can be encoded: registered, and not sharing its name with
/// another registered type.
pub fn is_registered(value: &Value) -> bool {
    let any: &dyn Any = value.as_any();
    let reg = registry().read().unwrap_or_else(|e| e.into_inner());
    reg.by_type
        .get(&any.type_id())
        .is_some_and(|e| !reg.shared.contains(&e.tag))
}

/// Append `value`'s frame (type tag, `nbytes`, the encoder's bytes) to `out`. `Err` with
/// the type's name when the type was never [`register`]ed, or when another registered type
/// has the same name (the receiver could not tell them apart); `out` is then unchanged.
pub fn encode(value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    let any: &dyn Any = value.as_any();
    let reg = registry().read().unwrap_or_else(|e| e.into_inner());
    let entry = reg.by_type.get(&any.type_id()).cloned().ok_or_else(|| {
        format!(
            "values of type {} have no wire encoding (register one with \
                 dag_core::wire::register)",
            value.type_name()
        )
    })?;
    if reg.shared.contains(&entry.tag) {
        return Err(format!(
            "values of type {} cannot travel: another registered type has the same name, so \
             a receiving process could not tell which of the two it is",
            entry.name
        ));
    }
    drop(reg);
    put_u64(out, entry.tag);
    put_u64(out, value.nbytes() as u64);
    (entry.encode)(any, out);
    Ok(())
}

/// Rebuild a value from one frame written by [`encode`] (in this or another process running
/// the same program). `Err` when the type tag is unknown here or the bytes are malformed.
pub fn decode(frame: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(frame);
    let tag = r.u64()?;
    let nbytes = r.usize()?;
    let reg = registry().read().unwrap_or_else(|e| e.into_inner());
    if reg.shared.contains(&tag) {
        return Err(format!(
            "a value with wire tag {tag:016x} arrived, but more than one type with that tag's \
             name is registered in this process"
        ));
    }
    let entry = reg.by_tag.get(&tag).cloned().ok_or_else(|| {
        format!(
            "a value of a type with wire tag {tag:016x} arrived, but no type with that tag \
                 is registered in this process (do all processes run the same program, and \
                 register the same types?)"
        )
    })?;
    drop(reg);
    let value = (entry.decode)(&mut r, nbytes)
        .map_err(|e| format!("cannot decode a value of type {}: {e}", entry.name))?;
    if r.remaining() != 0 {
        return Err(format!(
            "cannot decode a value of type {}: {} bytes left over",
            entry.name,
            r.remaining()
        ));
    }
    debug_assert_eq!(entry.tag, tag);
    Ok(value)
}

macro_rules! wire_num {
    ($reg:ident: $($t:ty),*) => {$(
        insert::<$t>(
            $reg,
            |v, out| out.extend_from_slice(&v.to_le_bytes()),
            |r| {
                let b = r.bytes(std::mem::size_of::<$t>())?;
                Ok(<$t>::from_le_bytes(b.try_into().expect("sized")))
            },
        );
        insert::<Vec<$t>>(
            $reg,
            |v, out| {
                put_u64(out, v.len() as u64);
                out.reserve(v.len() * std::mem::size_of::<$t>());
                for x in v {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            },
            |r| {
                const SIZE: usize = std::mem::size_of::<$t>();
                let n = r.usize()?;
                let bytes = r.bytes(n.checked_mul(SIZE).ok_or("length overflows")?)?;
                Ok(bytes
                    .chunks_exact(SIZE)
                    .map(|c| <$t>::from_le_bytes(c.try_into().expect("sized")))
                    .collect())
            },
        );
    )*};
}

fn register_primitives(reg: &mut Registry) {
    wire_num!(reg: u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);
    insert::<usize>(reg, |v, out| put_u64(out, *v as u64), |r| r.usize());
    insert::<isize>(
        reg,
        |v, out| put_u64(out, *v as i64 as u64),
        |r| {
            let v = r.u64()? as i64;
            isize::try_from(v).map_err(|_| format!("{v} does not fit this machine's isize"))
        },
    );
    insert::<()>(reg, |_, _| {}, |_| Ok(()));
    insert::<bool>(
        reg,
        |v, out| out.push(u8::from(*v)),
        |r| match r.bytes(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("{b} is not a bool")),
        },
    );
    insert::<char>(
        reg,
        |v, out| out.extend_from_slice(&u32::from(*v).to_le_bytes()),
        |r| {
            let v = u32::from_le_bytes(r.bytes(4)?.try_into().expect("4 bytes"));
            char::from_u32(v).ok_or_else(|| format!("{v:#x} is not a char"))
        },
    );
    insert::<String>(
        reg,
        |v, out| {
            put_u64(out, v.len() as u64);
            out.extend_from_slice(v.as_bytes());
        },
        |r| {
            let n = r.usize()?;
            String::from_utf8(r.bytes(n)?.to_vec()).map_err(|e| e.to_string())
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: Value) -> Value {
        let mut bytes = Vec::new();
        encode(&v, &mut bytes).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back.nbytes(), v.nbytes());
        assert_eq!(back.type_name(), v.type_name());
        back
    }

    #[test]
    fn primitives_round_trip() {
        assert_eq!(*round_trip(Value::new(-7i64)).get::<i64>().unwrap(), -7);
        assert_eq!(
            round_trip(Value::new(f64::NAN))
                .get::<f64>()
                .unwrap()
                .to_bits(),
            f64::NAN.to_bits()
        );
        assert!(round_trip(Value::new(())).is::<()>());
        assert!(*round_trip(Value::new(true)).get::<bool>().unwrap());
        assert_eq!(*round_trip(Value::new('é')).get::<char>().unwrap(), 'é');
        assert_eq!(
            *round_trip(Value::new(usize::MAX)).get::<usize>().unwrap(),
            usize::MAX
        );
        assert_eq!(
            round_trip(Value::new("héllo".to_string()))
                .get::<String>()
                .unwrap(),
            "héllo"
        );
        let v = vec![1.5f32, -0.0, f32::INFINITY];
        assert_eq!(
            round_trip(Value::new(v.clone())).get::<Vec<f32>>().unwrap(),
            &v
        );
        assert!(
            round_trip(Value::new(Vec::<u8>::new()))
                .get::<Vec<u8>>()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn malformed_frames_are_errors() {
        let mut bytes = Vec::new();
        encode(&Value::new(vec![1u64, 2, 3]), &mut bytes).unwrap();
        for cut in [0, 4, 12, 20, bytes.len() - 1] {
            let err = decode(&bytes[..cut]).unwrap_err();
            assert!(err.contains("truncated"), "{cut}: {err}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long).unwrap_err().contains("left over"));
        let mut unknown = bytes.clone();
        unknown[0] ^= 1;
        assert!(
            decode(&unknown)
                .unwrap_err()
                .contains("no type with that tag")
        );
        let mut bad_bool = Vec::new();
        encode(&Value::new(true), &mut bad_bool).unwrap();
        *bad_bool.last_mut().unwrap() = 7;
        assert!(decode(&bad_bool).unwrap_err().contains("not a bool"));
    }

    /// Two structs of one name in two blocks of one function are distinct types with one
    /// `type_name`: registering both makes values of either refuse to travel, naming why.
    #[test]
    fn types_sharing_a_name_cannot_travel() {
        let (first, first_name) = {
            struct Same(u8);
            register::<Same>(|v, out| out.push(v.0), |r| Ok(Same(r.bytes(1)?[0])));
            (
                Value::with_nbytes(Same(1), 1),
                std::any::type_name::<Same>(),
            )
        };
        let mut frame = Vec::new();
        encode(&first, &mut frame).unwrap();
        let (second, second_name) = {
            struct Same(u8);
            register::<Same>(|v, out| out.push(v.0), |r| Ok(Same(r.bytes(1)?[0])));
            (
                Value::with_nbytes(Same(2), 1),
                std::any::type_name::<Same>(),
            )
        };
        assert_eq!(first_name, second_name);
        for v in [&first, &second] {
            assert!(!is_registered(v));
            let mut out = Vec::new();
            let err = encode(v, &mut out).unwrap_err();
            assert!(err.contains("same name"), "{err}");
            assert!(out.is_empty());
        }
        let err = decode(&frame).unwrap_err();
        assert!(err.contains("more than one type"), "{err}");
    }

    #[test]
    fn unregistered_types_are_named() {
        struct Secret;
        let v = Value::with_nbytes(Secret, 0);
        assert!(!is_registered(&v));
        let mut out = vec![1, 2];
        let err = encode(&v, &mut out).unwrap_err();
        assert!(err.contains("Secret"), "{err}");
        assert_eq!(out, [1, 2]);
        assert!(is_registered(&Value::new(1u8)));
    }
}
