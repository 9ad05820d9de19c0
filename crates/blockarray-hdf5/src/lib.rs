//! # blockarray-hdf5: HDF5 datasets as lazy block arrays
//!
//! Read a dataset far larger than memory as a [`BlockArray`](blockarray::BlockArray), compute
//! on it block by block on every core, and store results — several datasets in one
//! computation — into HDF5 files, with bounded memory. Built on `hdf5-metno` over the system's
//! HDF5 library.
//!
//! ```
//! use blockarray_hdf5::{DatasetOptions, Hdf5Store, from_hdf5};
//!
//! let path = std::env::temp_dir().join(format!("blockarray-hdf5-overview-{}.h5", std::process::id()));
//! // Write: two datasets from one computation (x is generated once), compressed.
//! let x = blockarray::random::Rng::new(1).normal::<f64>(10.0, 2.0, &[4000, 1000], [1000, 500])?;
//! let mut store = Hdf5Store::new(&path);
//! let opts = DatasetOptions::new().deflate(1).shuffle(true);
//! store.dataset("/x", &x, &opts)?.dataset("/x2", &(&x * &x)?, &opts)?;
//! store.run()?;
//!
//! // Read lazily, in the file's chunks; chunks are inflated in parallel outside the HDF5 lock.
//! let y = from_hdf5::<f64>(&path, "/x")?;
//! assert_eq!(y.chunks().max_block_shape(), [1000, 500]);
//! let mean = y.mean(None, false)?.compute()?.into_iter().next().unwrap();
//! assert!((mean - 10.0).abs() < 0.01);
//!
//! // Errors name the file and the dataset.
//! let err = from_hdf5::<i32>(&path, "/x").unwrap_err();
//! assert!(err.to_string().contains("holds float64, not int32"), "{err}");
//! std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What is where:
//!
//! * Reading: [`from_hdf5`], [`from_hdf5_with`] ([`ReadOptions`]: chunks, [`ChunkIo`]),
//!   [`stack_hdf5`] and [`concatenate_hdf5`] for one dataset across many files (a list, or
//!   [`glob_files`]), [`dataset_info`], and the [`Hdf5Source`] behind them (a
//!   [`blockarray::ChunkSource`]).
//! * Writing: [`to_hdf5`], [`to_hdf5_with`] and [`Hdf5Store`] (many datasets, one
//!   computation; [`DatasetOptions`]: chunks, deflate, shuffle, overwrite), and the
//!   [`Hdf5Sink`] behind them (a [`blockarray::ChunkSink`]) for `store` into new or existing
//!   datasets.
//! * Element types ([`Hdf5Element`]): `f32`, `f64`, `i8`, `i16`, `i32`, `i64`, `u8`, `u16`, `u32`, `u64`, `bool` and
//!   `Complex<f32>`, `Complex<f64>`, in h5py-compatible layouts.
//!
//! # Design
//!
//! * **One lock.** The HDF5 C library is not thread-safe. Every HDF5 call this crate makes runs
//!   under one process-wide reentrant lock ([`with_hdf5_lock`], the lock `hdf5-metno` uses for
//!   its own calls), held only for the calls: computing, and (below) compressing, run in
//!   parallel.
//! * **Direct chunk I/O** ([`ChunkIo::Auto`]). For deflate/shuffle-compressed datasets a read
//!   takes the raw compressed chunk under the lock (`H5Dread_chunk`) and inflates and
//!   unshuffles it after releasing it, so decompression runs on every core; h5py (and so
//!   dask) decompress inside the library, one chunk at a time. Writes do the reverse
//!   (`H5Dwrite_chunk`) for blocks covering whole chunks. In a file open read-only, chunks
//!   (compressed or not) are only located under the lock and read with `pread` after it, so
//!   several reads are in flight at once; unfiltered chunks land straight in the block.
//! * **Failure safety.** New datasets are written under hidden temporary names and renamed
//!   into place only when the whole computation succeeded, all of a run's datasets together
//!   (a two-phase commit: every name is checked before any is taken, and a dataset being
//!   overwritten is kept aside until all are in place). A failure — a task, a name taken
//!   meanwhile, a failed rename — leaves the file as it was: no new dataset, overwritten
//!   datasets with their old values, and no file at all if the store created it. Writes in
//!   place into an existing dataset ([`Hdf5Store::existing`]) are the exception: a failure
//!   leaves that dataset partly written, and a store into a dataset the computation itself
//!   reads is refused. Bad input — a missing file or dataset, a group, the wrong element
//!   type, a shape mismatch, a truncated or corrupt file, a file another handle holds
//!   read-only — is an [`Error`](blockarray::Error) naming the file and the dataset.
//! * **One handle per file.** Sources and sinks on one file share one HDF5 handle, upgraded to
//!   read/write when a store needs it; datasets are opened only inside a locked call.

#![doc(test(attr(deny(warnings))))]

mod direct;
mod element;
mod file;
mod read;
mod write;

pub use element::Hdf5Element;
pub use file::with_hdf5_lock;
pub use read::{
    ChunkIo, DatasetInfo, Hdf5Source, ReadOptions, concatenate_hdf5, dataset_info, from_hdf5,
    from_hdf5_with, glob_files, stack_hdf5,
};
pub use write::{DatasetOptions, Hdf5Sink, Hdf5Store, to_hdf5, to_hdf5_with};
