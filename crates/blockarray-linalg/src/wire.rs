//! Values that cross processes: the wire encodings of this crate's task values (matrices,
//! Householder factorisations, LU panels), so that its algorithms run under `sched-mpi` like
//! every blockarray operation. Registered with [`dag_core::wire`] once per process, when the
//! first node of this crate is built.

use crate::kernels::{ColMat, House};
use crate::scalar::Scalar;
use dag_core::wire::{Reader, put_u64, register as reg};
use num_complex::Complex;

/// Scalars as little-endian bytes, one contiguous run per matrix (crate-internal: the module
/// is private).
pub trait WireScalar: Scalar {
    /// Append `v`'s bytes.
    fn put(v: &[Self], out: &mut Vec<u8>);
    /// Read `len` values.
    fn get(r: &mut Reader<'_>, len: usize) -> Result<Vec<Self>, String>;
}

macro_rules! wire_real {
    ($($t:ty),*) => {$(
        impl WireScalar for $t {
            fn put(v: &[Self], out: &mut Vec<u8>) {
                out.reserve(v.len() * std::mem::size_of::<$t>());
                for x in v {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            fn get(r: &mut Reader<'_>, len: usize) -> Result<Vec<Self>, String> {
                const W: usize = std::mem::size_of::<$t>();
                let n = len.checked_mul(W).ok_or("a run of values is too long")?;
                let bytes = r.bytes(n)?;
                Ok(bytes
                    .chunks_exact(W)
                    .map(|c| <$t>::from_le_bytes(c.try_into().expect("W bytes")))
                    .collect())
            }
        }
        impl WireScalar for Complex<$t> {
            fn put(v: &[Self], out: &mut Vec<u8>) {
                out.reserve(v.len() * 2 * std::mem::size_of::<$t>());
                for z in v {
                    out.extend_from_slice(&z.re.to_le_bytes());
                    out.extend_from_slice(&z.im.to_le_bytes());
                }
            }
            fn get(r: &mut Reader<'_>, len: usize) -> Result<Vec<Self>, String> {
                let parts = <$t as WireScalar>::get(r, len.checked_mul(2).ok_or("a run of values is too long")?)?;
                Ok(parts.chunks_exact(2).map(|p| Complex::new(p[0], p[1])).collect())
            }
        }
    )*};
}
wire_real!(f32, f64);

fn register_scalar<T: WireScalar>() {
    reg::<ColMat<T>>(|m, out| m.put(out), ColMat::get);
    reg::<Vec<ColMat<T>>>(
        |ms, out| {
            put_u64(out, ms.len() as u64);
            for m in ms {
                m.put(out);
            }
        },
        |r| {
            let n = r.usize()?;
            (0..n).map(|_| ColMat::get(r)).collect()
        },
    );
    reg::<House<T>>(|h, out| h.put(out), House::get);
    crate::lu::register_wire::<T>();
}

/// Register every value type this crate's tasks return (once per process).
pub(crate) fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        register_scalar::<f32>();
        register_scalar::<f64>();
        register_scalar::<Complex<f32>>();
        register_scalar::<Complex<f64>>();
        reg::<Vec<usize>>(
            |v, out| {
                put_u64(out, v.len() as u64);
                for &x in v {
                    put_u64(out, x as u64);
                }
            },
            |r| {
                let n = r.usize()?;
                (0..n).map(|_| r.usize()).collect()
            },
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use dag_core::Value;

    fn round_trip<T: Clone + Send + Sync + 'static>(v: T) -> T {
        register();
        let mut out = Vec::new();
        dag_core::wire::encode(&Value::with_nbytes(v, 0), &mut out).unwrap();
        let back = dag_core::wire::decode(&out).unwrap();
        back.get::<T>().unwrap().clone()
    }

    #[test]
    fn matrices_and_factorisations_round_trip() {
        let m = ColMat::<f64>::from_fn(5, 3, |i, j| (i * 3 + j) as f64 - 4.5);
        assert_eq!(round_trip(m.clone()), m);
        let c = ColMat::<Complex<f32>>::from_fn(2, 4, |i, j| Complex::new(i as f32, -(j as f32)));
        assert_eq!(round_trip(c.clone()), c);
        assert_eq!(
            round_trip(vec![m.clone(), m.rows(1..3)]),
            vec![m.clone(), m.rows(1..3)]
        );
        let h = House::new(m.clone(), true);
        let back = round_trip(h.clone());
        assert_eq!(back.r(), h.r());
        assert_eq!(back.q(), h.q());
        assert_eq!(round_trip(vec![3usize, 0, 7]), vec![3, 0, 7]);
    }
}
