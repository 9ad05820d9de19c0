//! Array operations, one module per family: [`elementwise`] maps with broadcasting ([`fused`]:
//! their tile kernels, and chains of them fused into one pass per block), [`reduce`]
//! tree reductions and scans, [`contract`] tensordot/matmul, [`shape`] transposes, reshapes,
//! rechunks and joins, [`slicing`] basic and fancy indexing, [`mask`] value-dependent shapes
//! (boolean masks, `nonzero`), [`blockwise`] user functions over blocks, [`overlap`] blocks
//! extended by their neighbours' margins (`map_overlap`), [`select`] top-k, exact quantiles,
//! sorting and partitioning, [`values`] unique, histograms, bincount, searchsorted, [`ufuncs`]
//! the rest of NumPy's ufuncs, [`bitwise`] `& | ^ ! << >>`; [`shape_more`] NumPy's other shape ops and creation (flip, roll,
//! tile, repeat, split, broadcast_to, tril/triu, meshgrid, …), [`pad`] `numpy.pad`, [`points`]
//! point-wise and orthogonal indexing and diagonals, [`einsum`] Einstein summation, `outer` and
//! batched matmul, [`map_axes`] block maps that drop or add axes and `apply_along_axis`.

pub mod bitwise;
pub mod blockwise;
pub mod contract;
pub mod einsum;
pub mod elementwise;
pub mod fused;
pub mod map_axes;
pub mod mask;
pub mod overlap;
pub mod pad;
pub mod points;
pub mod reduce;
pub mod select;
pub mod shape;
pub mod shape_more;
pub mod slicing;
pub mod ufuncs;
pub mod values;
