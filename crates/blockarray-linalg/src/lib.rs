//! # blockarray-linalg: blocked linear algebra on lazy chunked arrays
//!
//! (Overview written at the end.)

#![doc(test(attr(deny(warnings))))]

mod cholesky;
pub mod kernels;
mod node;
mod qr;
mod scalar;
mod svd;
mod tsqr;

pub use cholesky::cholesky;
pub use kernels::Tri;
pub use qr::{qr, qr_r, qr_tiled};
pub use scalar::{RealOf, Scalar};
pub use svd::{Svd, SvdCompressed, svd, svd_compressed, svd_via_qr};
pub use tsqr::{Tsqr, TsqrOptions, tsqr, tsqr_with};
