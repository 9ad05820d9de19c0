//! # blockarray-linalg: blocked linear algebra on lazy chunked arrays
//!
//! (Overview written at the end.)

#![doc(test(attr(deny(warnings))))]

mod cholesky;
mod eigh;
pub mod kernels;
mod lstsq;
mod lu;
mod node;
mod norm;
mod qr;
mod scalar;
mod svd;
mod triangular;
mod tsqr;

pub use cholesky::cholesky;
pub use eigh::eigh;
pub use kernels::Tri;
pub use lstsq::{Lstsq, lstsq};
pub use lu::{Lu, inv, lu, solve};
pub use norm::{NormOrd, norm};
pub use qr::{qr, qr_r, qr_tiled};
pub use scalar::{RealOf, Scalar};
pub use svd::{Svd, SvdCompressed, svd, svd_compressed, svd_via_qr};
pub use triangular::{solve_triangular, solve_triangular_with};
pub use tsqr::{Tsqr, TsqrOptions, tsqr, tsqr_with};
