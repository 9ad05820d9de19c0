//! The element types linear algebra works on: `f32`, `f64`, `Complex<f32>`, `Complex<f64>`.

use crate::node::{array, bi, op, task};
use blockarray::{BlockArray, Float, MatMul, Result, random::Rng};
use num_complex::Complex;

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for num_complex::Complex<f32> {}
    impl Sealed for num_complex::Complex<f64> {}
}

/// An element type with blocked linear algebra: `f32`, `f64`, `Complex<f32>` and
/// `Complex<f64>` (the types faer factorises). Sealed: the kernels are faer's.
///
/// [`RealOf<T>`] is the matching real type (singular values, norms, eigenvalues).
pub trait Scalar: MatMul + faer::traits::ComplexField + private::Sealed {
    /// The real type of the same precision.
    type Real: Scalar + Float + faer::traits::RealField;
    /// Whether the type is complex.
    const COMPLEX: bool;

    /// The complex conjugate (the value itself for real types).
    fn conjugate(self) -> Self;
    /// The absolute value (modulus).
    fn modulus(self) -> <Self as Scalar>::Real;
    /// The real part.
    fn re(self) -> <Self as Scalar>::Real;
    /// A value with this real part and no imaginary part.
    fn from_re(r: <Self as Scalar>::Real) -> Self;
    /// The machine epsilon of the real type, as `f64`.
    fn epsilon() -> f64;
    /// `|x|` elementwise, as a lazy array of the real type.
    fn abs_array(x: &BlockArray<Self>) -> BlockArray<<Self as Scalar>::Real>;
    /// Standard normal values (real parts only, for complex types) from blockarray's
    /// counter-based generator: the same values for a seed whatever the chunks.
    fn gaussian(seed: u64, shape: &[usize], chunks: Vec<Vec<usize>>) -> Result<BlockArray<Self>>;
}

/// The real type matching a [`Scalar`]: `f32` for `f32` and `Complex<f32>`, `f64` for `f64`
/// and `Complex<f64>`.
pub type RealOf<T> = <T as Scalar>::Real;

macro_rules! real_scalar {
    ($t:ty) => {
        impl Scalar for $t {
            type Real = $t;
            const COMPLEX: bool = false;
            fn conjugate(self) -> Self {
                self
            }
            fn modulus(self) -> $t {
                self.abs()
            }
            fn re(self) -> $t {
                self
            }
            fn from_re(r: $t) -> Self {
                r
            }
            fn epsilon() -> f64 {
                f64::from(<$t>::EPSILON)
            }
            fn abs_array(x: &BlockArray<Self>) -> BlockArray<$t> {
                x.abs()
            }
            fn gaussian(
                seed: u64,
                shape: &[usize],
                chunks: Vec<Vec<usize>>,
            ) -> Result<BlockArray<Self>> {
                Rng::new(seed).normal::<$t>(0.0, 1.0, shape, chunks)
            }
        }
    };
}
real_scalar!(f32);
real_scalar!(f64);

macro_rules! complex_scalar {
    ($t:ty) => {
        impl Scalar for Complex<$t> {
            type Real = $t;
            const COMPLEX: bool = true;
            fn conjugate(self) -> Self {
                self.conj()
            }
            fn modulus(self) -> $t {
                self.norm()
            }
            fn re(self) -> $t {
                self.re
            }
            fn from_re(r: $t) -> Self {
                Complex::new(r, 0.0)
            }
            fn epsilon() -> f64 {
                f64::from(<$t>::EPSILON)
            }
            fn abs_array(x: &BlockArray<Self>) -> BlockArray<$t> {
                x.abs()
            }
            fn gaussian(
                seed: u64,
                shape: &[usize],
                chunks: Vec<Vec<usize>>,
            ) -> Result<BlockArray<Self>> {
                let re = Rng::new(seed).normal::<$t>(0.0, 1.0, shape, chunks)?;
                let node = op::<Self, _>(
                    "to-complex",
                    &[0usize; 0],
                    vec![re.node().clone()],
                    re.chunks().clone(),
                    true,
                    |index| {
                        task(vec![(0, bi(index))], |v| {
                            let b = blockarray::block_ref::<$t>(&v[0])?;
                            Ok(blockarray::block_value(b.mapv(|x| Complex::new(x, 0.0))))
                        })
                    },
                );
                array(node)
            }
        }
    };
}
complex_scalar!(f32);
complex_scalar!(f64);
