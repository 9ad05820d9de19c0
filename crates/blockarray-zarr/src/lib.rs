//! # blockarray-zarr: Zarr arrays as lazy block arrays
//!
//! Read a Zarr array (v2 or v3, sharded or not) far larger than memory as a
//! [`BlockArray`](blockarray::BlockArray), compute on it block by block on every core, and
//! store results — several arrays in one computation — into Zarr stores, failure-safe. Built
//! on the [`zarrs`] crate, through blockarray's public [`ChunkSource`](blockarray::ChunkSource)
//! and [`ChunkSink`](blockarray::ChunkSink) traits; the API mirrors `blockarray-hdf5`, so
//! `from_hdf5` → [`from_zarr`], `to_hdf5` → [`to_zarr`], `Hdf5Store` → [`ZarrStore`] is the
//! whole change.
//!
//! ```
//! use blockarray_zarr::{ArrayOptions, Compressor, ZarrStore, from_zarr};
//!
//! let dir = std::env::temp_dir().join(format!("blockarray-zarr-overview-{}", std::process::id()));
//! // Write: two arrays from one computation (x is generated once), zstd-compressed, v3.
//! let x = blockarray::random::Rng::new(1).normal::<f64>(10.0, 2.0, &[4000, 1000], [1000, 500])?;
//! let mut store = ZarrStore::new(&dir);
//! let opts = ArrayOptions::new().compressor(Compressor::Zstd(3));
//! store.array("x", &x, &opts)?.array("x2", &(&x * &x)?, &opts)?;
//! store.run()?;
//!
//! // Read lazily, in the store's chunks; chunks are decoded in parallel, one task each.
//! let y = from_zarr::<f64>(&dir, "x")?;
//! assert_eq!(y.chunks().max_block_shape(), [1000, 500]);
//! let mean = y.mean(None, false)?.compute()?.into_iter().next().unwrap();
//! assert!((mean - 10.0).abs() < 0.01);
//!
//! // Errors name the store and the array.
//! let err = from_zarr::<i32>(&dir, "x").unwrap_err();
//! assert!(err.to_string().contains("holds float64, not int32"), "{err}");
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What is where:
//!
//! * Reading: [`from_zarr`], [`from_zarr_with`] ([`ReadOptions`]: blocks), [`stack_zarr`] and
//!   [`concatenate_zarr`] for one array across many stores (a list, or [`glob_stores`]),
//!   [`array_info`], and the [`ZarrSource`] behind them (a [`blockarray::ChunkSource`]).
//! * Writing: [`to_zarr`], [`to_zarr_with`] and [`ZarrStore`] (many arrays, one computation;
//!   [`ArrayOptions`]: chunks, shards, [`Compressor`], transpose, byte order, format
//!   version, overwrite; [`UpdateOptions`]: a region of an existing array, staged or in
//!   place), and the [`ZarrSink`] behind them (a [`blockarray::ChunkSink`]).
//! * Element types ([`ZarrElement`]): `f32`, `f64`, `i8`, `i16`, `i32`, `i64`, `u8`, `u16`,
//!   `u32`, `u64`, `bool`, `Complex<f32>`, `Complex<f64>`.
//!
//! # Design
//!
//! * **No lock.** Zarr keeps each chunk (or shard) in its own file, so tasks read, decode,
//!   encode and write their chunks independently: decoding runs on every worker of the
//!   scheduler (zarrs' own thread pool is not used inside a task). A block that is exactly
//!   one stored chunk is decoded straight into the block's memory, and a block written as
//!   whole chunks is encoded straight from it.
//! * **Only what is needed is read.** Slices push down to the source, so a task decodes only
//!   the chunks holding its elements — for strided slices too.
//! * **Failure safety.** New arrays are written to a hidden directory and renamed into place
//!   only when the whole computation succeeded; updates of existing arrays are staged and
//!   moved over the old chunks only then. Exactly what is left:
//!   - a run that fails (a task's error or panic, a refused commit of any of its sinks): the
//!     store as it was, byte for byte — temporary and staging directories, and directories
//!     made for new arrays, are deleted, and arrays or chunks already replaced by the run are
//!     put back (tested with snapshots of the whole store);
//!   - a process killed during the run: hidden directories `.NAME.blockarray-tmp-PID-N`
//!     (a new array's chunks, no metadata, so no Zarr reader sees an array there) and
//!     `.NAME.blockarray-stage-PID-N` (staged chunks); existing arrays untouched;
//!   - a process killed while a staged update commits: some chunk files replaced, the rest
//!     old (each replacement is one `rename`);
//!   - in-place updates ([`UpdateOptions::in_place`]) that fail: the chunks written so far.
//! * **No lost writes.** The stored chunk (or shard) is the unit of writing. A chunking in
//!   which two tasks would write one chunk is refused before anything runs, with the rechunk
//!   that fixes it (dask's `to_zarr` silently corrupted such arrays: dask issue 12583).
//! * **Errors name the store, the array and the chunk key**: a missing store or array (listing
//!   the arrays there), an unsupported codec or data type, the wrong element type, a corrupt
//!   or truncated chunk.
//! * **Keys follow the contents.** A source's token hashes the store, the array, its
//!   metadata and the size and modification time of every stored chunk, so a rewritten
//!   array gets new keys.

#![doc(test(attr(deny(warnings))))]

mod element;
mod read;
mod store;
mod write;

pub use element::ZarrElement;
pub use read::{
    ArrayInfo, ReadOptions, ZarrSource, array_info, concatenate_zarr, from_zarr, from_zarr_with,
    glob_stores, stack_zarr,
};
pub use write::{
    ArrayOptions, BloscCompressor, BloscShuffle, Compressor, Endian, UpdateOptions, ZarrSink,
    ZarrStore, ZarrVersion, to_zarr, to_zarr_with,
};
