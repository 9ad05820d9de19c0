//! Value-dependent shapes: boolean masks, `compress`, `extract`, `nonzero`, `argwhere`,
//! `flatnonzero`.
//!
//! # Design notes
//!
//! The length of `x[mask]` depends on the mask's values, so the result's blocks have lengths
//! that are not known until computed: their axis is *unknown* in [`Chunks`] (dask's NaN
//! chunks), with the block lengths of the input as upper bounds and an origin token naming the
//! mask. Every block of the result is made from the matching block of the input and of the
//! mask alone — no task waits for another block's count — so the selection is as lazy and as
//! parallel as any elementwise operation, and fuses with what comes before it.
//!
//! Reductions, elementwise operations between arrays of the same origin (`x[m] + y[m]`), and
//! in-memory results work on unknown lengths directly; what needs positions (slicing, reshape,
//! rechunk, contractions, stores into files) asks for
//! [`compute_chunk_sizes`](crate::BlockArray::compute_chunk_sizes) first.
//!
//! NumPy selects in C order of the whole array. A block's elements are in C order only when
//! every axis after the first is one block, so an n-d mask first flattens both arrays
//! ([`BlockArray::ravel`]), which rechunks those axes when needed.

use crate::expr::array::{BlockTask, Meta, Node, block_ref, block_value, token_of};
use crate::ops::shape::rechunk_direct;
use crate::{BlockArray, Chunks, Element, Error, Result, unify_axis};
use dag_core::{BlockIndex, Tokenizer, Value};
use ndarray::{ArrayD, Axis, IxDyn};
use std::sync::Arc;

/// Selects, along one axis, the positions where the matching mask block is true.
struct MaskNode<T> {
    meta: Meta,
    input: Arc<dyn Node>,
    /// A 1-d boolean array chunked like `input` along `axis`.
    mask: Arc<dyn Node>,
    axis: usize,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: Element> Node for MaskNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone(), self.mask.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let axis = self.axis;
        BlockTask {
            deps: vec![
                (0, BlockIndex::from_slice(index)),
                (1, BlockIndex::from_slice(&[index[axis]])),
            ],
            func: Arc::new(move |v: &[Value]| {
                let x = block_ref::<T>(&v[0])?;
                let m = block_ref::<bool>(&v[1])?;
                let keep: Vec<usize> = m
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &b)| b.then_some(i))
                    .collect();
                Ok(block_value(x.select(Axis(axis), &keep)))
            }),
        }
    }
}

/// What [`NonzeroNode`] makes of the positions of the nonzero elements of a flat block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Positions {
    /// Rows of multi-indices into the original shape (`argwhere`).
    Rows,
    /// One coordinate of the multi-indices (one array of `nonzero`).
    Coordinate(usize),
    /// Flat indices (`flatnonzero`).
    Flat,
}

/// The positions of the nonzero elements of a flattened array, block by block.
struct NonzeroNode<T> {
    meta: Meta,
    /// The array flattened (C order), known chunks.
    flat: Arc<dyn Node>,
    /// The original shape, to turn flat positions into multi-indices.
    shape: Vec<usize>,
    what: Positions,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: Element> Node for NonzeroNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.flat.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let start = self.flat.meta().chunks.block_start(&index[..1])[0];
        let (shape, what) = (self.shape.clone(), self.what);
        BlockTask {
            deps: vec![(0, BlockIndex::from_slice(&index[..1]))],
            func: Arc::new(move |v: &[Value]| {
                let x = block_ref::<T>(&v[0])?;
                let zero = T::default();
                let flat: Vec<i64> = x
                    .iter()
                    .enumerate()
                    .filter(|&(_, &e)| e != zero)
                    .map(|(i, _)| (start + i) as i64)
                    .collect();
                let coordinate = |p: i64, axis: usize| -> i64 {
                    let inner: usize = shape[axis + 1..].iter().product();
                    (p as usize / inner % shape[axis]) as i64
                };
                let out = match what {
                    Positions::Flat => ArrayD::from_shape_vec(IxDyn(&[flat.len()]), flat),
                    Positions::Coordinate(axis) => {
                        let c: Vec<i64> = flat.iter().map(|&p| coordinate(p, axis)).collect();
                        ArrayD::from_shape_vec(IxDyn(&[c.len()]), c)
                    }
                    Positions::Rows => {
                        let nd = shape.len();
                        let rows: Vec<i64> = flat
                            .iter()
                            .flat_map(|&p| (0..nd).map(move |a| (p, a)))
                            .map(|(p, a)| coordinate(p, a))
                            .collect();
                        ArrayD::from_shape_vec(IxDyn(&[flat.len(), nd]), rows)
                    }
                }
                .expect("sizes match");
                Ok(block_value(out))
            }),
        }
    }
}

impl<T: Element> BlockArray<T> {
    /// The elements in C order as a 1-d array (`numpy.ravel`): a reshape, which rechunks the
    /// axes after the first into single blocks when needed.
    pub fn ravel(&self) -> Result<BlockArray<T>> {
        if self.ndim() == 1 {
            return Ok(self.clone());
        }
        self.reshape(&[self.len()])
    }

    /// The elements where `mask` is true (`x[mask]`, NumPy's boolean indexing), in C order: a
    /// 1-d array when `mask` has this array's shape, or this array with only the selected
    /// positions of axis 0 when `mask` is 1-d with the length of axis 0 (as NumPy). The
    /// result's length is not known until computed: reductions, elementwise operations with
    /// arrays masked the same way, and `compute` work on it directly; see
    /// [`compute_chunk_sizes`](Self::compute_chunk_sizes) for the rest.
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// // The seed tutorial's mean of the positive elements: x[x > 0].mean()
    /// let x = BlockArray::arange(-5.0, 5.0, 1.0, 4)?.reshape(&[2, 5])?;
    /// let positive = x.mask(&x.greater(0.0)?)?;
    /// assert_eq!(positive.mean(None, false)?.compute()?[[]], 2.5);
    /// assert_eq!(positive.compute()?.into_raw_vec_and_offset().0, vec![1.0, 2.0, 3.0, 4.0]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn mask(&self, mask: &BlockArray<bool>) -> Result<BlockArray<T>> {
        if mask.shape() == self.shape() && self.ndim() != 1 {
            return self.ravel()?.mask(&mask.ravel()?);
        }
        if mask.ndim() == 1 && self.ndim() >= 1 && mask.shape()[0] == self.shape()[0] {
            return self.compress(mask, Some(0));
        }
        Err(Error::shape(format!(
            "a boolean mask must have the array's shape {} or be 1-d with the length of axis 0, \
             got shape {}",
            crate::error::fmt_shape(self.shape()),
            crate::error::fmt_shape(mask.shape())
        )))
    }

    /// The slices along `axis` where `condition` is true (`numpy.compress`); with `axis` `None`,
    /// the elements of the flattened array. A `condition` shorter than the axis selects
    /// nothing past its end, as NumPy's; a longer one is an error.
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::arange(0i64, 12, 1, 5)?.reshape(&[3, 4])?;
    /// let c = BlockArray::from_array(ndarray::arr1(&[true, false, true]), 2)?;
    /// let rows = x.compress(&c, Some(0))?.compute()?;
    /// assert_eq!(rows.shape(), &[2, 4]);
    /// assert_eq!(rows[[1, 0]], 8);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn compress(
        &self,
        condition: &BlockArray<bool>,
        axis: Option<usize>,
    ) -> Result<BlockArray<T>> {
        let Some(axis) = axis else {
            return self.ravel()?.compress(condition, Some(0));
        };
        self.check_axis(axis)?;
        if condition.ndim() != 1 {
            return Err(Error::shape(format!(
                "compress: the condition must be 1-d, got shape {}",
                crate::error::fmt_shape(condition.shape())
            )));
        }
        let len = self.shape()[axis];
        let n = condition.shape()[0];
        if n > len {
            return Err(Error::shape(format!(
                "compress: a condition of length {n} is longer than axis {axis} of length {len}"
            )));
        }
        self.chunks()
            .require_known_axis(axis, "compress along an axis")?;
        condition.chunks().require_known("a compress condition")?;
        let condition = if n < len {
            let rest = BlockArray::<bool>::full(&[len - n], false, len - n)?;
            crate::concatenate(&[condition, &rest], 0)?
        } else {
            condition.clone()
        };
        let common = unify_axis(self.chunks().axis(axis), condition.chunks().axis(0))?;
        let mut want = self.chunks().axes().to_vec();
        want[axis] = common.clone();
        let want = Chunks::from_blocks(want)?.with_unknown_of(self.chunks(), &[axis]);
        let input = rechunk_direct(&self.node, want.clone())?;
        let mask = rechunk_direct(&condition.node, Chunks::from_blocks(vec![common.clone()])?)?;
        // Arrays masked by the same condition along the same axis and chunks have equal
        // lengths: that is the origin of the unknown axis.
        let mut origin = Tokenizer::new();
        origin
            .write_str("mask")
            .write_str(&mask.meta().name)
            .write_usize(axis)
            .write(common.as_slice());
        let chunks = want.with_unknown_axis(axis, origin.finish());
        let mut t = token_of(&[&input, &mask]);
        t.write_usize(axis);
        Ok(BlockArray::wrap(Arc::new(MaskNode::<T> {
            meta: Meta::new::<T>("mask", t, chunks),
            input,
            mask,
            axis,
            _type: std::marker::PhantomData,
        })))
    }

    /// The positions of the nonzero elements (`numpy.argwhere`): an array of shape
    /// `(count, ndim)` of indices in C order, its first axis of unknown length.
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::from_array(ndarray::arr2(&[[0, 3], [4, 0]]), [1, 1])?;
    /// assert_eq!(x.argwhere()?.compute()?, ndarray::arr2(&[[0i64, 1], [1, 0]]).into_dyn());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn argwhere(&self) -> Result<BlockArray<i64>> {
        self.positions(Positions::Rows)
    }

    /// The indices of the nonzero elements along each axis (`numpy.nonzero`, and NumPy's
    /// one-argument `where`): one 1-d array per axis, of equal unknown lengths (they combine
    /// elementwise with each other).
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::from_array(ndarray::arr2(&[[0.0, 3.0], [4.0, f64::NAN]]), [1, 2])?;
    /// let [rows, cols] = <[_; 2]>::try_from(x.nonzero()?).unwrap();
    /// assert_eq!(rows.compute()?.into_raw_vec_and_offset().0, vec![0, 1, 1]); // NaN is nonzero
    /// assert_eq!(cols.compute()?.into_raw_vec_and_offset().0, vec![1, 0, 1]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    ///
    /// A 0-d array is refused, as NumPy 2 refuses it (`atleast_1d` it first).
    pub fn nonzero(&self) -> Result<Vec<BlockArray<i64>>> {
        if self.ndim() == 0 {
            return Err(Error::shape(
                "nonzero of a 0-d array has no axis to index: reshape it to 1-d first \
                 (NumPy's atleast_1d)",
            ));
        }
        (0..self.ndim())
            .map(|a| self.positions(Positions::Coordinate(a)))
            .collect()
    }

    /// The flat (C-order) indices of the nonzero elements (`numpy.flatnonzero`).
    pub fn flatnonzero(&self) -> Result<BlockArray<i64>> {
        self.positions(Positions::Flat)
    }

    fn positions(&self, what: Positions) -> Result<BlockArray<i64>> {
        self.chunks().require_known("nonzero")?;
        // A 0-d array is flattened to one element, whose coordinates are none: `argwhere`
        // gives rows of width 0 (NumPy: shape (1, 0) or (0, 0)).
        let shape = self.shape().to_vec();
        let flat = if self.ndim() == 0 {
            self.reshape(&[1])?
        } else {
            self.ravel()?
        };
        let bounds = flat.chunks().axis(0).to_vec();
        let mut origin = Tokenizer::new();
        origin
            .write_str("nonzero")
            .write_str(flat.name())
            .write(bounds.as_slice());
        let axes = match what {
            Positions::Rows => vec![bounds, vec![shape.len()]],
            _ => vec![bounds],
        };
        let chunks = Chunks::from_blocks(axes)?.with_unknown_axis(0, origin.finish());
        let mut t = token_of(&[&flat.node]);
        t.write(shape.as_slice());
        match what {
            Positions::Rows => t.write_u64(0),
            Positions::Coordinate(a) => t.write_u64(1).write_usize(a),
            Positions::Flat => t.write_u64(2),
        };
        let op = match what {
            Positions::Rows => "argwhere",
            Positions::Coordinate(_) => "nonzero",
            Positions::Flat => "flatnonzero",
        };
        Ok(BlockArray::wrap(Arc::new(NonzeroNode::<T> {
            meta: Meta::new::<i64>(op, t, chunks),
            flat: flat.node.clone(),
            shape,
            what,
            _type: std::marker::PhantomData,
        })))
    }
}

/// The elements of `x` where `condition` is true, both flattened (`numpy.extract`): they
/// must have the same number of elements.
pub fn extract<T: Element>(
    condition: &BlockArray<bool>,
    x: &BlockArray<T>,
) -> Result<BlockArray<T>> {
    if condition.len() != x.len() {
        return Err(Error::shape_mismatch(
            "extract: condition and array must have the same size",
            condition.shape(),
            x.shape(),
        ));
    }
    x.ravel()?.mask(&condition.ravel()?)
}
