//! Array operations, one module per family: [`elementwise`] maps with broadcasting, [`reduce`]
//! tree reductions and scans, [`contract`] tensordot/matmul, [`shape`] transposes, reshapes,
//! rechunks and joins, [`slicing`] basic and fancy indexing, [`mask`] value-dependent shapes
//! (boolean masks, `nonzero`), [`blockwise`] user functions over
//! blocks.

pub mod blockwise;
pub mod contract;
pub mod elementwise;
pub mod mask;
pub mod reduce;
pub mod shape;
pub mod slicing;
