//! # blockarray-linalg: blocked linear algebra on lazy chunked arrays
//!
//! (Overview written at the end.)

#![doc(test(attr(deny(warnings))))]

pub mod kernels;
mod node;
mod qr;
mod scalar;
mod tsqr;

pub use kernels::Tri;
pub use qr::{qr, qr_r, qr_tiled};
pub use scalar::{RealOf, Scalar};
pub use tsqr::{Tsqr, TsqrOptions, tsqr, tsqr_with};
