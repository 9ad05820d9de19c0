//! Array operations, one module per family: [`elementwise`] maps with broadcasting, [`reduce`]
//! tree reductions and scans, [`contract`] tensordot/matmul, [`shape`] transposes, reshapes,
//! rechunks and joins, [`slicing`] basic and fancy indexing, [`mask`] value-dependent shapes
//! (boolean masks, `nonzero`), [`blockwise`] user functions over blocks, [`overlap`] blocks
//! extended by their neighbours' margins (`map_overlap`), [`select`] top-k, exact quantiles,
//! sorting and partitioning, [`values`] unique, histograms, bincount, searchsorted, [`ufuncs`] the rest of NumPy's ufuncs, [`bitwise`] `& | ^ ! << >>`.

pub mod bitwise;
pub mod blockwise;
pub mod contract;
pub mod elementwise;
pub mod mask;
pub mod overlap;
pub mod reduce;
pub mod select;
pub mod shape;
pub mod slicing;
pub mod ufuncs;
pub mod values;
