//! Writing: sinks into Zarr arrays, and many arrays stored in one computation.
//!
//! # Design notes
//!
//! * **The unit of writing is the stored chunk** (the shard, for a sharded array): a chunk is
//!   one file, compressed as a whole, so writing part of it means reading, merging and
//!   rewriting all of it. Two tasks doing that to one chunk at once lose one task's data
//!   (dask's `to_zarr` did exactly that, silently: dask issue 12583). So every block boundary
//!   inside the written region must fall on a chunk boundary; [`ZarrSink`] checks the
//!   chunking when the store is added ([`ChunkSink::check_chunks`], before anything runs) and
//!   again for each block it receives, and the error names the rechunk that fixes it. Only a
//!   chunk cut by the edge of a `region` is read and merged, by the one task that owns it.
//! * **New arrays appear whole or not at all.** A new array's chunks go to a hidden directory
//!   beside it (`.name.blockarray-tmp-<pid>-<n>`) with no metadata; at commit the metadata is
//!   written there and the directory renamed to the array's name (one `rename`, atomic on
//!   POSIX file systems; replacing an old array renames that one aside first and deletes it
//!   after). A failed run deletes the directory.
//! * **Existing arrays are not half-overwritten** unless asked ([`UpdateOptions::in_place`]):
//!   by default the new chunks go to a hidden staging directory and replace the old chunk
//!   files one `rename` each at commit.

use crate::element::{ZarrElement, type_name};
use crate::read::{Grid, task_codec_options};
use crate::store::{self, FsArray, NodeKind, err, io_err};
use blockarray::{BlockArray, ChunkSink, Chunks, Computation, Error, ErrorKind, Result, Results};
use dag_core::{Callbacks, RunStats, Scheduler};
use ndarray::{ArrayD, IxDyn, SliceInfoElem};
use serde_json::{Value, json};
use std::marker::PhantomData;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use zarrs::array::{Array, ArrayMetadata, CodecOptions};

/// The Zarr format version of a new array.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ZarrVersion {
    /// Zarr v2 (`.zarray`, `.zattrs`; no sharding, no transpose codec).
    V2,
    /// Zarr v3 (`zarr.json`), the default.
    #[default]
    V3,
}

/// The compressor blosc uses inside.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BloscCompressor {
    /// LZ4 (blosc's usual choice: fast).
    #[default]
    Lz4,
    /// LZ4 HC.
    Lz4hc,
    /// BloscLZ.
    Blosclz,
    /// Zstandard.
    Zstd,
    /// zlib.
    Zlib,
    /// Snappy.
    Snappy,
}

impl BloscCompressor {
    fn name(self) -> &'static str {
        match self {
            BloscCompressor::Lz4 => "lz4",
            BloscCompressor::Lz4hc => "lz4hc",
            BloscCompressor::Blosclz => "blosclz",
            BloscCompressor::Zstd => "zstd",
            BloscCompressor::Zlib => "zlib",
            BloscCompressor::Snappy => "snappy",
        }
    }
}

/// The byte or bit shuffle blosc applies before compressing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BloscShuffle {
    /// None.
    NoShuffle,
    /// Byte shuffle (groups the bytes of equal significance), the default.
    #[default]
    Shuffle,
    /// Bit shuffle.
    BitShuffle,
}

/// How chunks are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compressor {
    /// Stored raw.
    None,
    /// Zstandard at a level (−131072 to 22; 0 means zstd's default, 3). The default compressor
    /// is `Zstd(1)`: fast, and close to level 3's ratio on numeric data.
    Zstd(i32),
    /// gzip at a level (0–9).
    Gzip(u32),
    /// blosc.
    Blosc {
        /// The compressor inside blosc.
        cname: BloscCompressor,
        /// The level (0–9).
        clevel: u8,
        /// The shuffle.
        shuffle: BloscShuffle,
    },
}

impl Default for Compressor {
    fn default() -> Compressor {
        Compressor::Zstd(1)
    }
}

/// The byte order of stored elements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Endian {
    /// Little-endian (the default, and every common machine's).
    #[default]
    Little,
    /// Big-endian.
    Big,
}

/// How new arrays are created: chunks, shards, codecs, format, replacement.
///
/// ```
/// use blockarray_zarr::{ArrayOptions, Compressor};
/// let o = ArrayOptions::new().chunks([256, 256]).shards([1024, 1024]).compressor(Compressor::Gzip(5));
/// assert_eq!(o.chunk_shape(), Some(&[256, 256][..]));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArrayOptions {
    chunks: Option<Vec<usize>>,
    shards: Option<Vec<usize>>,
    compressor: Compressor,
    transpose: Option<Vec<usize>>,
    endian: Endian,
    version: ZarrVersion,
    overwrite: bool,
    dimension_names: Option<Vec<String>>,
}

impl ArrayOptions {
    /// Zarr v3, chunks following the stored array's blocks, `Zstd(1)`, little-endian, no
    /// sharding, no overwriting.
    pub fn new() -> ArrayOptions {
        ArrayOptions::default()
    }

    /// The chunk shape (one entry per axis, each ≥ 1; entries longer than the axis are
    /// clamped): the unit a reader decodes. By default the stored array's block shape. With
    /// [`shards`](Self::shards), the inner chunk shape (then it must be given).
    #[must_use]
    pub fn chunks(mut self, shape: impl Into<Vec<usize>>) -> ArrayOptions {
        self.chunks = Some(shape.into());
        self
    }

    /// Store chunks together in shards of this shape (a whole number of chunks along each
    /// axis; Zarr v3's `sharding_indexed` codec): one file per shard instead of per chunk.
    /// The shard is then the unit of writing: blocks must cover whole shards.
    #[must_use]
    pub fn shards(mut self, shape: impl Into<Vec<usize>>) -> ArrayOptions {
        self.shards = Some(shape.into());
        self
    }

    /// The compressor (default [`Compressor::Zstd`] at level 1).
    #[must_use]
    pub fn compressor(mut self, compressor: Compressor) -> ArrayOptions {
        self.compressor = compressor;
        self
    }

    /// Store each chunk with its axes permuted (Zarr v3's `transpose` codec; `order[i]` is
    /// the axis that becomes axis `i`). `[1, 0]` stores a 2-d chunk column-major.
    #[must_use]
    pub fn transpose(mut self, order: impl Into<Vec<usize>>) -> ArrayOptions {
        self.transpose = Some(order.into());
        self
    }

    /// The byte order of stored elements (default little-endian).
    #[must_use]
    pub fn endian(mut self, endian: Endian) -> ArrayOptions {
        self.endian = endian;
        self
    }

    /// The Zarr format (default v3).
    #[must_use]
    pub fn version(mut self, version: ZarrVersion) -> ArrayOptions {
        self.version = version;
        self
    }

    /// Replace an array of the same name (when the store succeeds; a failed store leaves it
    /// as it was). Without it, an existing array is an error.
    #[must_use]
    pub fn overwrite(mut self, on: bool) -> ArrayOptions {
        self.overwrite = on;
        self
    }

    /// Name the axes (v3 `dimension_names`; in v2 the `_ARRAY_DIMENSIONS` attribute xarray
    /// reads).
    #[must_use]
    pub fn dimension_names<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> ArrayOptions {
        self.dimension_names = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The chunk shape asked for, if any.
    pub fn chunk_shape(&self) -> Option<&[usize]> {
        self.chunks.as_deref()
    }
}

/// How an existing array is written: which part, and whether in place.
///
/// ```
/// use blockarray_zarr::UpdateOptions;
/// let o = UpdateOptions::new().region(vec![0..100, 50..60]);
/// assert_eq!(o.region_ranges(), Some(&[0..100, 50..60][..]));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateOptions {
    region: Option<Vec<Range<usize>>>,
    in_place: bool,
}

impl UpdateOptions {
    /// The whole array, staged (see [`in_place`](Self::in_place)).
    pub fn new() -> UpdateOptions {
        UpdateOptions::default()
    }

    /// Write only this part of the array (one range per axis); the stored array must have the
    /// region's shape. Chunks the region's edges cut are read, merged and rewritten.
    #[must_use]
    pub fn region(mut self, region: impl Into<Vec<Range<usize>>>) -> UpdateOptions {
        self.region = Some(region.into());
        self
    }

    /// Write chunks straight over the old ones as blocks finish (faster: no staging copy),
    /// instead of staging them and replacing the old chunk files only after the whole
    /// computation succeeded. A failed in-place run leaves the array partly overwritten, and
    /// an expression that reads the same array elsewhere (`x[::-1]` stored into `x`) may read
    /// chunks already overwritten.
    #[must_use]
    pub fn in_place(mut self, on: bool) -> UpdateOptions {
        self.in_place = on;
        self
    }

    /// The region asked for, if any.
    pub fn region_ranges(&self) -> Option<&[Range<usize>]> {
        self.region.as_deref()
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether something other than an empty directory is at `path` (an empty directory, the store
/// itself for an array at its root, is replaced by renaming a new array over it).
fn occupied(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
        && !std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

/// A hidden sibling of `dir`: `.name.blockarray-<what>-<pid>-<n>`.
fn hidden_sibling(dir: &Path, what: &str) -> PathBuf {
    let leaf = dir
        .file_name()
        .map_or_else(|| "array".to_owned(), |n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!(
        ".{leaf}.blockarray-{what}-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The v3 codec list for elements of `itemsize` bytes.
fn v3_codecs(itemsize: usize, inner: Option<&[usize]>, o: &ArrayOptions) -> Vec<Value> {
    let mut chain = Vec::new();
    if let Some(order) = &o.transpose {
        chain.push(json!({"name": "transpose", "configuration": {"order": order}}));
    }
    chain.push(if itemsize == 1 {
        json!({"name": "bytes"})
    } else {
        let endian = match o.endian {
            Endian::Little => "little",
            Endian::Big => "big",
        };
        json!({"name": "bytes", "configuration": {"endian": endian}})
    });
    match o.compressor {
        Compressor::None => {}
        Compressor::Zstd(level) => chain
            .push(json!({"name": "zstd", "configuration": {"level": level, "checksum": false}})),
        Compressor::Gzip(level) => {
            chain.push(json!({"name": "gzip", "configuration": {"level": level}}))
        }
        Compressor::Blosc {
            cname,
            clevel,
            shuffle,
        } => {
            let shuffle = match shuffle {
                BloscShuffle::NoShuffle => "noshuffle",
                BloscShuffle::Shuffle => "shuffle",
                BloscShuffle::BitShuffle => "bitshuffle",
            };
            chain.push(json!({"name": "blosc", "configuration": {
                "cname": cname.name(), "clevel": clevel, "shuffle": shuffle,
                "typesize": itemsize, "blocksize": 0}}));
        }
    }
    match inner {
        None => chain,
        Some(inner) => vec![json!({"name": "sharding_indexed", "configuration": {
            "chunk_shape": inner,
            "codecs": chain,
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
            "index_location": "end"}})],
    }
}

/// The metadata documents of a new array: `(file name, JSON)`.
fn metadata_documents<T: ZarrElement>(
    shape: &[usize],
    grid_chunk: &[usize],
    inner: Option<&[usize]>,
    o: &ArrayOptions,
) -> Vec<(&'static str, Value)> {
    match o.version {
        ZarrVersion::V3 => {
            let mut m = json!({
                "zarr_format": 3,
                "node_type": "array",
                "shape": shape,
                "data_type": T::DTYPE,
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid_chunk}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": T::fill_json(),
                "codecs": v3_codecs(T::itemsize(), inner, o),
                "attributes": {},
            });
            if let Some(names) = &o.dimension_names {
                m["dimension_names"] = json!(names);
            }
            vec![("zarr.json", m)]
        }
        ZarrVersion::V2 => {
            let mut dtype = T::V2_DTYPE.to_owned();
            if o.endian == Endian::Big && dtype.starts_with('<') {
                dtype.replace_range(0..1, ">");
            }
            let compressor = match o.compressor {
                Compressor::None => Value::Null,
                Compressor::Zstd(level) => json!({"id": "zstd", "level": level}),
                Compressor::Gzip(level) => json!({"id": "gzip", "level": level}),
                Compressor::Blosc {
                    cname,
                    clevel,
                    shuffle,
                } => json!({"id": "blosc", "cname": cname.name(), "clevel": clevel,
                    "shuffle": match shuffle {
                        BloscShuffle::NoShuffle => 0,
                        BloscShuffle::Shuffle => 1,
                        BloscShuffle::BitShuffle => 2,
                    }, "blocksize": 0}),
            };
            let zarray = json!({
                "zarr_format": 2,
                "shape": shape,
                "chunks": grid_chunk,
                "dtype": dtype,
                "compressor": compressor,
                "fill_value": T::fill_json(),
                "order": "C",
                "filters": null,
                "dimension_separator": ".",
            });
            let attrs = match &o.dimension_names {
                Some(names) => json!({"_ARRAY_DIMENSIONS": names}),
                None => json!({}),
            };
            vec![(".zarray", zarray), (".zattrs", attrs)]
        }
    }
}

/// The group metadata documents of the given format.
fn group_documents(version: ZarrVersion) -> Vec<(&'static str, Value)> {
    match version {
        ZarrVersion::V3 => vec![(
            "zarr.json",
            json!({"zarr_format": 3, "node_type": "group", "attributes": {}}),
        )],
        ZarrVersion::V2 => vec![(".zgroup", json!({"zarr_format": 2}))],
    }
}

fn write_documents(dir: &Path, docs: &[(&'static str, Value)]) -> std::io::Result<()> {
    for (name, doc) in docs {
        let bytes = serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SinkState {
    Open,
    Committed,
    Discarded,
}

/// What a commit keeps so that it can be undone until every sink of the run has committed
/// ([`ChunkSink::rollback`]); released by [`ChunkSink::finish`].
enum Undo {
    /// A new array: the array it replaced, moved aside (if there was one).
    New { aside: Option<PathBuf> },
    /// A staged update: the replaced chunk files, moved under `old` (same keys), and for each
    /// chunk replaced in order, its key and whether it had a file before.
    Staged {
        old: PathBuf,
        replaced: Vec<(String, bool)>,
    },
}

/// Where a sink's chunks go until commit.
enum Mode {
    /// A new array, written under `temp` (no metadata until commit), renamed into place.
    New {
        temp: PathBuf,
        overwrite: bool,
        documents: Vec<(&'static str, Value)>,
        /// Directories this sink created (outermost first) and whether each is a node of the
        /// store (so gets group metadata at commit).
        created: Vec<(PathBuf, bool)>,
        version: ZarrVersion,
    },
    /// Chunks of an existing array, written under `stage` and moved over the old ones at
    /// commit; `written` lists the chunks (indices) stored there.
    Staged {
        stage: PathBuf,
        written: Mutex<Vec<Vec<u64>>>,
    },
    /// Straight into the existing array.
    InPlace,
}

/// A [`ChunkSink`] writing blocks into a Zarr array.
///
/// Three kinds:
///
/// - [`ZarrSink::create`]: a **new** array, written to a hidden directory beside its final
///   place; [`commit`](ZarrSink::commit) writes its metadata and renames it into place
///   (replacing an older array when [`ArrayOptions::overwrite`] was given). Dropping the sink
///   uncommitted, or [`discard`](ZarrSink::discard), deletes the directory.
/// - [`ZarrSink::open`]: an **existing** array (or a region of it, [`UpdateOptions`]); new
///   chunks go to a hidden staging directory and replace the old chunk files at commit, so a
///   failed run changes nothing.
/// - [`ZarrSink::open`] with [`UpdateOptions::in_place`]: chunks written over the old ones as
///   blocks arrive (a failure part way leaves the array partly written).
///
/// A [`Computation`] (and so [`ZarrStore`], [`to_zarr`] and `BlockArray::store`) commits its
/// sinks when the run succeeded and discards them when it failed ([`ChunkSink::commit`],
/// [`ChunkSink::abort`]). A chunking in which two blocks would write one stored chunk (or
/// shard) is refused when the store is added ([`ChunkSink::check_chunks`]).
///
/// Blocks may arrive from many threads at once: each task encodes and writes its own chunks,
/// with no lock shared between tasks.
pub struct ZarrSink<T> {
    store: PathBuf,
    array: String,
    /// The array's directory.
    target: PathBuf,
    mode: Mode,
    /// The zarrs array chunks are written through (rooted at the temporary or staging
    /// directory, or the target itself in place).
    write: FsArray,
    /// The existing array, read for chunks a region's edges cut (staged sinks).
    original: Option<FsArray>,
    /// The region's first element in the array.
    offset: Vec<usize>,
    /// The region's (the sink's) shape.
    shape: Vec<usize>,
    /// The whole array's shape.
    full: Vec<usize>,
    /// The unit of writing: the chunk grid's chunk (the shard of a sharded array).
    unit: Vec<usize>,
    /// The array's fill value: what the part of an edge chunk past the array's end is
    /// written with (it shows if the array is resized).
    fill: T,
    options: CodecOptions,
    state: Mutex<SinkState>,
    /// Set by a commit that can still be rolled back.
    undo: Mutex<Option<Undo>>,
    _type: PhantomData<fn() -> T>,
}

impl<T: ZarrElement> ZarrSink<T> {
    /// A new array of `shape` at `array` in the store at `store` (the store directory, and
    /// groups on the way, are created when missing), written under a temporary name until
    /// [`commit`](Self::commit).
    ///
    /// Errors (naming store and array): the store path is a file; the path is a group, or
    /// crosses an array; an array exists there and `options` does not say
    /// [`overwrite`](ArrayOptions::overwrite); invalid options (a chunk or shard shape of the
    /// wrong rank or with a zero, shards that are not whole numbers of chunks, shards without
    /// chunks, a transpose order that is not a permutation, a level out of range, sharding or
    /// transpose in Zarr v2).
    pub fn create(
        store: impl AsRef<Path>,
        array: &str,
        shape: &[usize],
        options: &ArrayOptions,
    ) -> Result<ZarrSink<T>> {
        let store_in = store.as_ref();
        let name = store::normalize_array_path(store_in, array)?;
        let bad = |kind: ErrorKind, msg: String| err(kind, store_in, &name, msg);
        let (unit, inner) =
            plan_chunks(shape, options, T::itemsize()).map_err(|(kind, msg)| bad(kind, msg))?;
        check_codec_options(shape.len(), options).map_err(|(kind, msg)| bad(kind, msg))?;
        if std::fs::metadata(store_in).is_ok_and(|m| !m.is_dir()) {
            return Err(io_err(
                store_in,
                &name,
                "the store path is a file, not a directory",
            ));
        }
        // Create the directories on the way (remembering which, to remove them again if the
        // run fails), then resolve the store's absolute path.
        let target_in = store::node_dir(store_in, &name);
        let parent_in = target_in
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let mut missing = Vec::new();
        let mut p = parent_in.as_path();
        while !p.as_os_str().is_empty() && !p.exists() {
            missing.push(p.to_path_buf());
            match p.parent() {
                Some(up) => p = up,
                None => break,
            }
        }
        // Check what is on the way before creating anything.
        let mut node = String::new();
        for part in name.split('/').filter(|p| !p.is_empty()) {
            node.push('/');
            node.push_str(part);
            let d = store::node_dir(store_in, &node);
            let kind = store::node_kind(&d);
            let last = node == name;
            match kind {
                NodeKind::Array if !last => {
                    return Err(io_err(
                        store_in,
                        &name,
                        format!("cannot be created: \"{node}\" is an array"),
                    ));
                }
                NodeKind::File => {
                    return Err(io_err(
                        store_in,
                        &name,
                        format!("cannot be created: \"{node}\" is a file"),
                    ));
                }
                NodeKind::Group | NodeKind::Directory if last => {
                    return Err(io_err(
                        store_in,
                        &name,
                        "is a group (or a directory), not an array; it is not replaced",
                    ));
                }
                NodeKind::Array if !options.overwrite => {
                    return Err(io_err(
                        store_in,
                        &name,
                        "already exists (use ArrayOptions::overwrite(true) to replace it)",
                    ));
                }
                _ => {}
            }
        }
        if name == "/" {
            match store::node_kind(store_in) {
                NodeKind::Group => {
                    return Err(io_err(
                        store_in,
                        &name,
                        "the store's root is a group; it is not replaced by an array",
                    ));
                }
                NodeKind::Directory
                    if std::fs::read_dir(store_in).is_ok_and(|mut d| d.next().is_some()) =>
                {
                    return Err(io_err(
                        store_in,
                        &name,
                        "the store is a non-empty directory without Zarr metadata; it is not replaced",
                    ));
                }
                NodeKind::Array if !options.overwrite => {
                    return Err(io_err(
                        store_in,
                        &name,
                        "already exists (use ArrayOptions::overwrite(true) to replace it)",
                    ));
                }
                _ => {}
            }
        }
        for d in missing.iter().rev() {
            if let Err(e) = std::fs::create_dir(d)
                && e.kind() != std::io::ErrorKind::AlreadyExists
            {
                // `missing` is innermost first.
                remove_empty_dirs(missing.iter().map(PathBuf::as_path));
                return Err(io_err(
                    store_in,
                    &name,
                    format!("cannot create directory {}: {e}", d.display()),
                ));
            }
        }
        let root = match std::fs::canonicalize(store_in) {
            Ok(r) => r,
            Err(_) if name == "/" => {
                // A root array of a store that does not exist yet: its parent exists now.
                let parent = store_in.parent().filter(|p| !p.as_os_str().is_empty());
                let parent = std::fs::canonicalize(parent.unwrap_or(Path::new(".")))
                    .map_err(|e| io_err(store_in, &name, e))?;
                parent.join(store_in.file_name().unwrap_or_default())
            }
            Err(e) => return Err(io_err(store_in, &name, e)),
        };
        let target = store::node_dir(&root, &name);
        // Which created directories are the store's nodes (groups): those inside the store.
        let created: Vec<(PathBuf, bool)> = missing
            .iter()
            .rev()
            .map(|d| {
                let abs = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
                let is_node = abs.starts_with(&root);
                (abs, is_node)
            })
            .collect();
        let temp = hidden_sibling(&target, "tmp");
        let fail_cleanup = |e: Error| {
            let _ = std::fs::remove_dir_all(&temp);
            remove_empty_dirs(created.iter().rev().map(|(d, _)| d.as_path()));
            e
        };
        std::fs::create_dir(&temp).map_err(|e| {
            fail_cleanup(io_err(
                &root,
                &name,
                format!("cannot create directory {}: {e}", temp.display()),
            ))
        })?;
        let documents = metadata_documents::<T>(shape, &unit, inner.as_deref(), options);
        let metadata =
            parse_metadata(&documents).map_err(|e| fail_cleanup(io_err(&root, &name, e)))?;
        let write = store::fs_store(&temp, &name)
            .and_then(|fs| {
                Array::new_with_metadata(fs, "/", metadata)
                    .map_err(|e| store::create_error(&root, &name, e))
            })
            .map_err(fail_cleanup)?;
        Ok(ZarrSink {
            store: root,
            array: name,
            target,
            mode: Mode::New {
                temp,
                overwrite: options.overwrite,
                documents,
                created,
                version: options.version,
            },
            write,
            original: None,
            offset: vec![0; shape.len()],
            shape: shape.to_vec(),
            full: shape.to_vec(),
            unit,
            fill: T::default(),
            options: task_codec_options(),
            state: Mutex::new(SinkState::Open),
            undo: Mutex::new(None),
            _type: PhantomData,
        })
    }

    /// The existing array `array` of the store at `store`, or the region of it `options`
    /// names; checks that it holds `T` and that the region fits. Staged unless
    /// [`UpdateOptions::in_place`].
    pub fn open(
        store: impl AsRef<Path>,
        array: &str,
        options: &UpdateOptions,
    ) -> Result<ZarrSink<T>> {
        let store_in = store.as_ref();
        let name = store::normalize_array_path(store_in, array)?;
        let root = store::existing_store(store_in, &name)?;
        let original = store::open_array(&root, &name)?;
        if !T::accepts(original.data_type()) {
            return Err(err(
                ErrorKind::Type,
                &root,
                &name,
                format!(
                    "the array holds {}, not {}: store an array of that type (astype)",
                    type_name(original.data_type()),
                    T::DTYPE
                ),
            ));
        }
        let grid = Grid::of(&original, &root, &name)?;
        let fill = fill_value::<T>(&original).map_err(|e| {
            err(
                ErrorKind::Type,
                &root,
                &name,
                format!("its fill value: {e}"),
            )
        })?;
        let region: Vec<Range<usize>> = match &options.region {
            Some(r) => r.clone(),
            None => grid.shape.iter().map(|&n| 0..n).collect(),
        };
        if region.len() != grid.shape.len()
            || region
                .iter()
                .zip(&grid.shape)
                .any(|(r, &n)| r.start > r.end || r.end > n)
        {
            return Err(err(
                ErrorKind::Index,
                &root,
                &name,
                format!(
                    "the region {region:?} is not inside the array's shape {:?}",
                    grid.shape
                ),
            ));
        }
        let target = store::node_dir(&root, &name);
        let (mode, write, original) = if options.in_place {
            (Mode::InPlace, original, None)
        } else {
            let stage = hidden_sibling(&target, "stage");
            std::fs::create_dir(&stage).map_err(|e| {
                io_err(
                    &root,
                    &name,
                    format!("cannot create directory {}: {e}", stage.display()),
                )
            })?;
            let write = store::fs_store(&stage, &name).and_then(|fs| {
                Array::new_with_metadata(fs, "/", original.metadata().clone())
                    .map_err(|e| store::create_error(&root, &name, e))
            });
            let write = match write {
                Ok(w) => w,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&stage);
                    return Err(e);
                }
            };
            (
                Mode::Staged {
                    stage,
                    written: Mutex::new(Vec::new()),
                },
                write,
                Some(original),
            )
        };
        Ok(ZarrSink {
            store: root,
            array: name,
            target,
            mode,
            write,
            original,
            offset: region.iter().map(|r| r.start).collect(),
            shape: region.iter().map(Range::len).collect(),
            full: grid.shape,
            unit: grid.chunk,
            fill,
            options: task_codec_options(),
            state: Mutex::new(SinkState::Open),
            undo: Mutex::new(None),
            _type: PhantomData,
        })
    }

    /// The store (absolute path).
    pub fn store(&self) -> &Path {
        &self.store
    }

    /// The array's (final) path in the store.
    pub fn array(&self) -> &str {
        &self.array
    }

    /// The unit of writing: the chunk shape, or the shard shape of a sharded array.
    pub fn write_unit(&self) -> &[usize] {
        &self.unit
    }

    /// The directories this sink created for a new array (outermost first).
    fn created_dirs(&self) -> Vec<PathBuf> {
        match &self.mode {
            Mode::New { created, .. } => created.iter().map(|(d, _)| d.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether chunks go to a temporary or staging directory until
    /// [`commit`](Self::commit) (false only for in-place writes).
    pub fn is_staged(&self) -> bool {
        !matches!(self.mode, Mode::InPlace)
    }

    /// The block lengths along `axis` that tile this sink's region without two blocks
    /// sharing a stored chunk: up to the first chunk boundary, then whole chunks.
    fn aligned_axis(&self, axis: usize) -> Vec<usize> {
        let (start, len, c) = (self.offset[axis], self.shape[axis], self.unit[axis]);
        let mut out = Vec::new();
        let mut pos = start;
        let end = start + len;
        while pos < end {
            let next = ((pos / c + 1) * c).min(end);
            out.push(next - pos);
            pos = next;
        }
        if out.is_empty() {
            out.push(0);
        }
        out
    }

    /// Refuse `chunks` (blocks of the stored array, in the region's coordinates) if a block
    /// boundary inside the region falls inside a stored chunk; the error names the axis, the
    /// boundary and the rechunk that fixes it.
    fn check_alignment(&self, chunks: &Chunks) -> Result<()> {
        for axis in 0..self.shape.len() {
            let c = self.unit[axis];
            let offsets = chunks.offsets(axis);
            for &b in offsets.iter().skip(1) {
                let g = self.offset[axis] + b;
                if b < self.shape[axis] && !g.is_multiple_of(c) {
                    let aligned: Vec<Vec<usize>> = (0..self.shape.len())
                        .map(|k| self.aligned_axis(k))
                        .collect();
                    let suggestion = if aligned.iter().all(|a| {
                        a.len() <= 1
                            || a[1..a.len() - 1].iter().all(|&n| n == a[0])
                                && a[a.len() - 1] <= a[0]
                    }) {
                        let shape: Vec<usize> = aligned.iter().map(|a| a[0]).collect();
                        format!("x.rechunk(vec!{shape:?})")
                    } else {
                        let axes: Vec<String> =
                            aligned.iter().map(|a| format!("vec!{a:?}")).collect();
                        format!("x.rechunk(ChunkSpec::Explicit(vec![{}]))", axes.join(", "))
                    };
                    let unit = if self
                        .write
                        .codecs()
                        .array_to_bytes_codec()
                        .as_any()
                        .is::<zarrs::array::codec::ShardingCodec>()
                    {
                        "shard"
                    } else {
                        "chunk"
                    };
                    return Err(err(
                        ErrorKind::Chunks,
                        &self.store,
                        &self.array,
                        format!(
                            "the stored array's blocks {chunks} would make two tasks write one Zarr {unit} \
                             (stored {unit} shape {:?}): along axis {axis} a block boundary falls at \
                             array position {g}, inside a {unit} (not a multiple of {c}); each task \
                             would rewrite the whole {unit} and one's data would be lost (dask issue \
                             12583). Rechunk the array first: {suggestion}",
                            self.unit
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// An error naming the store and array unless an array of `shape` fits the sink exactly.
    pub fn check_shape(&self, shape: &[usize]) -> Result<()> {
        if shape != self.shape.as_slice() {
            return Err(err(
                ErrorKind::Shape,
                &self.store,
                &self.array,
                format!(
                    "the destination has shape {:?} but the array stored into it has shape {shape:?}",
                    self.shape
                ),
            ));
        }
        Ok(())
    }

    fn fail(&self, e: impl std::fmt::Display) -> Error {
        io_err(&self.store, &self.array, e)
    }

    fn fail_chunk(&self, idx: &[u64], what: &str, e: impl std::fmt::Display) -> Error {
        let key = self.write.chunk_key(idx);
        self.fail(format!("chunk \"{}\" cannot be {what}: {e}", key.as_str()))
    }

    /// Make the written data the array: for a new array, write its metadata and rename it
    /// into place (replacing an older one when overwriting); for a staged update, move each
    /// new chunk file over the old one. Call after the computation that filled the sink
    /// succeeded; a no-op for an in-place sink and a sink already committed.
    ///
    /// A staged update's commit replaces chunk files one `rename` each: a crash part way
    /// through leaves some chunks new and some old (a failure of the computation itself never
    /// gets here).
    pub fn commit(&self) -> Result<()> {
        self.commit_keeping_undo()?;
        self.finish();
        Ok(())
    }

    /// [`commit`](Self::commit), keeping what [`rollback`](Self::rollback) needs (the run's
    /// first commit phase; see [`ChunkSink`]). A commit that fails part way undoes itself.
    fn commit_keeping_undo(&self) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match *state {
            SinkState::Committed => return Ok(()),
            SinkState::Discarded => {
                return Err(self.fail("cannot commit: the written data was discarded"));
            }
            SinkState::Open => {}
        }
        let r = match &self.mode {
            Mode::InPlace => Ok(None),
            Mode::New {
                temp,
                overwrite,
                documents,
                created,
                version,
            } => self
                .commit_new(temp, *overwrite, documents, created, *version)
                .map(|aside| Some(Undo::New { aside })),
            Mode::Staged { stage, written } => {
                let written =
                    std::mem::take(&mut *written.lock().unwrap_or_else(|e| e.into_inner()));
                self.commit_staged(stage, &written).map(Some)
            }
        };
        match r {
            Ok(undo) => {
                *state = SinkState::Committed;
                *self.undo.lock().unwrap_or_else(|e| e.into_inner()) = undo;
                Ok(())
            }
            Err(e) => {
                *state = SinkState::Discarded;
                self.cleanup();
                Err(e)
            }
        }
    }

    fn commit_new(
        &self,
        temp: &Path,
        overwrite: bool,
        documents: &[(&'static str, Value)],
        created: &[(PathBuf, bool)],
        version: ZarrVersion,
    ) -> Result<Option<PathBuf>> {
        write_documents(temp, documents)
            .map_err(|e| self.fail(format!("cannot write the metadata: {e}")))?;
        // Groups on the way first: the array becomes visible last, in one rename.
        for (dir, is_node) in created {
            if *is_node && dir != &self.target && store::node_kind(dir) == NodeKind::Directory {
                write_documents(dir, &group_documents(version)).map_err(|e| {
                    self.fail(format!(
                        "cannot write group metadata in {}: {e}",
                        dir.display()
                    ))
                })?;
            }
        }
        self.check_replaceable(overwrite)?;
        let mut old = None;
        if occupied(&self.target) {
            let aside = hidden_sibling(&self.target, "old");
            std::fs::rename(&self.target, &aside)
                .map_err(|e| self.fail(format!("cannot move the old array aside: {e}")))?;
            old = Some(aside);
        }
        if let Err(e) = std::fs::rename(temp, &self.target) {
            if let Some(aside) = &old {
                let _ = std::fs::rename(aside, &self.target);
            }
            return Err(self.fail(format!("cannot rename the new array into place: {e}")));
        }
        // The replaced array stays aside until the run's every sink committed.
        Ok(old)
    }

    /// Move each staged chunk over the old one, the old one kept under a hidden directory
    /// (for a rollback); a failure part way puts back what was moved.
    fn commit_staged(&self, stage: &Path, written: &[Vec<u64>]) -> Result<Undo> {
        let old = hidden_sibling(&self.target, "replaced");
        let mut replaced: Vec<(String, bool)> = Vec::with_capacity(written.len());
        for (n, idx) in written.iter().enumerate() {
            let key = self.write.chunk_key(idx).as_str().to_owned();
            let (src, dst, kept) = (stage.join(&key), self.target.join(&key), old.join(&key));
            let moved = (|| -> std::io::Result<bool> {
                let had_old = match std::fs::symlink_metadata(&dst) {
                    Ok(_) => {
                        kept.parent().map_or(Ok(()), std::fs::create_dir_all)?;
                        std::fs::rename(&dst, &kept)?;
                        true
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                    Err(e) => return Err(e),
                };
                replaced.push((key.clone(), had_old));
                // All fill value: zarrs stored nothing; the old chunk goes too.
                if src.exists() {
                    dst.parent().map_or(Ok(()), std::fs::create_dir_all)?;
                    std::fs::rename(&src, &dst)?;
                }
                Ok(had_old)
            })();
            if let Err(e) = moved {
                self.restore_chunks(&old, &replaced);
                return Err(self.fail(format!(
                    "replacing chunk \"{key}\" failed after {n} of {} chunks were replaced \
                     (the replaced ones were put back): {e}",
                    written.len()
                )));
            }
        }
        Ok(Undo::Staged { old, replaced })
    }

    /// Put the chunk files moved under `old` back, newest first, deleting the new ones.
    fn restore_chunks(&self, old: &Path, replaced: &[(String, bool)]) {
        for (key, had_old) in replaced.iter().rev() {
            let dst = self.target.join(key);
            let _ = std::fs::remove_file(&dst);
            if *had_old {
                let _ = std::fs::rename(old.join(key), &dst);
            }
        }
        let _ = std::fs::remove_dir_all(old);
    }

    /// For a new array: an error unless its place is free, or holds an array that `overwrite`
    /// allows replacing (something may have appeared there while the computation ran).
    fn check_replaceable(&self, overwrite: bool) -> Result<()> {
        if occupied(&self.target)
            && (!overwrite || store::node_kind(&self.target) != NodeKind::Array)
        {
            return Err(self.fail(
                "appeared while the computation ran; it is not replaced (the new data was discarded)",
            ));
        }
        Ok(())
    }

    /// Undo a commit (another sink of the run failed to commit): the array as it was before
    /// the run. A no-op unless committed with undo information still kept.
    fn rollback(&self) {
        let undo = self.undo.lock().unwrap_or_else(|e| e.into_inner()).take();
        match undo {
            Some(Undo::New { aside }) => {
                let discarded = hidden_sibling(&self.target, "discarded");
                if std::fs::rename(&self.target, &discarded).is_ok() {
                    let _ = std::fs::remove_dir_all(&discarded);
                }
                if let Some(aside) = aside {
                    let _ = std::fs::rename(aside, &self.target);
                }
            }
            Some(Undo::Staged { old, replaced }) => self.restore_chunks(&old, &replaced),
            None => {}
        }
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = SinkState::Discarded;
        self.cleanup();
    }

    /// Release what a rollback would have needed: the replaced array or chunk files, and the
    /// staging directory.
    fn finish(&self) {
        match self.undo.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // Failing to delete only leaves a hidden directory behind.
            Some(Undo::New { aside: Some(aside) }) => {
                let _ = std::fs::remove_dir_all(aside);
            }
            Some(Undo::Staged { old, .. }) => {
                let _ = std::fs::remove_dir_all(old);
            }
            _ => {}
        }
        if let Mode::Staged { stage, .. } = &self.mode {
            let _ = std::fs::remove_dir_all(stage);
        }
    }

    /// Delete the temporary or staging directory (and the directories made for a new array,
    /// if still empty); later writes fail. A no-op for committed sinks; an in-place sink
    /// cannot undo what it wrote.
    pub fn discard(&self) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if *state != SinkState::Open {
            return Ok(());
        }
        *state = SinkState::Discarded;
        self.cleanup();
        Ok(())
    }

    fn cleanup(&self) {
        match &self.mode {
            Mode::New {
                temp,
                created,
                version,
                ..
            } => {
                let _ = std::fs::remove_dir_all(temp);
                // The directories this sink created, deepest first, with the group metadata
                // its commit wrote into them when that is all they hold (a commit that failed
                // after writing it, or one rolled back, left an empty hierarchy behind).
                let groups = group_documents(*version);
                for (d, is_node) in created.iter().rev() {
                    if *is_node {
                        remove_lone_documents(d, &groups);
                    }
                    let _ = std::fs::remove_dir(d);
                }
            }
            Mode::Staged { stage, .. } => {
                let _ = std::fs::remove_dir_all(stage);
            }
            Mode::InPlace => {}
        }
    }

    /// Encode and store stored chunk `idx`, whose part `cov` (array coordinates) comes from
    /// `block` (whose first element is at `start`).
    fn write_chunk(
        &self,
        idx: &[u64],
        cov: &[Range<usize>],
        block: &ArrayD<T>,
        start: &[usize],
    ) -> Result<()> {
        let origin: Vec<usize> = idx
            .iter()
            .zip(&self.unit)
            .map(|(&i, &c)| i as usize * c)
            .collect();
        let bounded: Vec<Range<usize>> = origin
            .iter()
            .zip(&self.unit)
            .zip(&self.full)
            .map(|((&o, &c), &n)| o..(o + c).min(n))
            .collect();
        let whole = cov == bounded.as_slice();
        let src: Vec<SliceInfoElem> = cov
            .iter()
            .zip(start)
            .map(|(r, &s)| (r.start - s..r.end - s).into())
            .collect();
        let piece = block.slice(src.as_slice());
        let interior = bounded.iter().zip(&self.unit).all(|(b, &c)| b.len() == c);
        let stored = if whole && interior && piece.is_standard_layout() {
            // The usual case (a block is one chunk): encode straight from the block.
            let values = piece.to_slice().expect("standard layout");
            self.write.store_chunk_opt(idx, values, &self.options)
        } else {
            let mut chunk = if whole {
                // An edge chunk is stored at full size; the part past the array's end is
                // the fill value.
                ArrayD::from_elem(IxDyn(&self.unit), self.fill)
            } else {
                // A region's edge cuts this chunk: merge into its current contents.
                let from = self.original.as_ref().unwrap_or(&self.write);
                from.retrieve_chunk_opt::<ArrayD<T>>(idx, &self.options)
                    .map_err(|e| self.fail_chunk(idx, "read for merging", e))?
            };
            let dst: Vec<SliceInfoElem> = cov
                .iter()
                .zip(&origin)
                .map(|(r, &o)| (r.start - o..r.end - o).into())
                .collect();
            chunk.slice_mut(dst.as_slice()).assign(&piece);
            self.write.store_chunk_opt(idx, chunk, &self.options)
        };
        stored.map_err(|e| self.fail_chunk(idx, "written", e))?;
        if let Mode::Staged { written, .. } = &self.mode {
            written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(idx.to_vec());
        }
        Ok(())
    }
}

/// The fill value of `array` as a `T` (whose data type the caller has checked).
fn fill_value<T: ZarrElement>(array: &FsArray) -> std::result::Result<T, String> {
    let bytes = zarrs::array::ArrayBytes::new_fill_value(array.data_type(), 1, array.fill_value())
        .map_err(|e| e.to_string())?;
    T::from_array_bytes(array.data_type(), bytes)
        .map_err(|e| e.to_string())?
        .pop()
        .ok_or_else(|| "no value".to_string())
}

/// Remove the files of `docs` from `dir` when they are all it holds.
fn remove_lone_documents(dir: &Path, docs: &[(&'static str, Value)]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let names: Vec<std::ffi::OsString> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    if !names.is_empty() && names.iter().all(|n| docs.iter().any(|(d, _)| n == *d)) {
        for n in &names {
            let _ = std::fs::remove_file(dir.join(n));
        }
    }
}

/// Remove each directory if it is empty (innermost first, as given).
fn remove_empty_dirs<'a>(dirs: impl Iterator<Item = &'a Path>) {
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

/// The zarrs metadata of `documents` (checked by parsing, as a reader would).
fn parse_metadata(
    documents: &[(&'static str, Value)],
) -> std::result::Result<ArrayMetadata, String> {
    let (name, doc) = &documents[0];
    let parsed = if *name == "zarr.json" {
        serde_json::from_value(doc.clone()).map(ArrayMetadata::V3)
    } else {
        serde_json::from_value(doc.clone()).map(ArrayMetadata::V2)
    };
    parsed.map_err(|e| format!("invalid metadata {doc}: {e}"))
}

type PlanError = (ErrorKind, String);

/// The chunk grid's chunk (the shard when sharded) and the inner chunk, from the options,
/// clamped to the shape (each entry ≥ 1; a shard a whole number of inner chunks).
fn plan_chunks(
    shape: &[usize],
    o: &ArrayOptions,
    itemsize: usize,
) -> std::result::Result<(Vec<usize>, Option<Vec<usize>>), PlanError> {
    let check = |what: &str, c: &[usize]| {
        if c.len() != shape.len() || c.contains(&0) {
            Err((
                ErrorKind::Chunks,
                format!(
                    "{what} shape {c:?} does not fit an array of shape {shape:?} (one entry ≥ 1 per axis)"
                ),
            ))
        } else {
            Ok(())
        }
    };
    let chunk = match &o.chunks {
        Some(c) => {
            check("chunk", c)?;
            c.clone()
        }
        None if o.shards.is_some() => {
            return Err((
                ErrorKind::Chunks,
                "sharding needs the inner chunk shape too: ArrayOptions::chunks(...)".to_owned(),
            ));
        }
        None => {
            blockarray::Chunks::new(shape, blockarray::ChunkSpec::auto_bytes(1 << 24), itemsize)
                .map(|c| c.max_block_shape())
                .map_err(|e| (ErrorKind::Chunks, e.to_string()))?
        }
    };
    let chunk: Vec<usize> = chunk
        .iter()
        .zip(shape)
        .map(|(&c, &n)| c.min(n).max(1))
        .collect();
    match &o.shards {
        None => Ok((chunk, None)),
        Some(s) => {
            check("shard", s)?;
            if o.version == ZarrVersion::V2 {
                return Err((ErrorKind::Unsupported, "sharding needs Zarr v3".to_owned()));
            }
            let wanted = o.chunks.as_deref().unwrap_or(&chunk);
            if s.iter().zip(wanted).any(|(&s, &c)| s % c != 0) {
                return Err((
                    ErrorKind::Chunks,
                    format!(
                        "shard shape {s:?} is not a whole number of chunks {wanted:?} along every axis"
                    ),
                ));
            }
            // Clamp: no bigger than needed to cover the axis in whole chunks.
            let shard: Vec<usize> = s
                .iter()
                .zip(&chunk)
                .zip(shape)
                .map(|((&s, &c), &n)| s.min(n.max(1).div_ceil(c) * c))
                .collect();
            Ok((shard, Some(chunk)))
        }
    }
}

fn check_codec_options(ndim: usize, o: &ArrayOptions) -> std::result::Result<(), PlanError> {
    let unsupported = |m: String| Err((ErrorKind::Unsupported, m));
    match o.compressor {
        Compressor::Zstd(level) if !(-131072..=22).contains(&level) => {
            return unsupported(format!("zstd level {level} is not in -131072–22"));
        }
        Compressor::Gzip(level) if level > 9 => {
            return unsupported(format!("gzip level {level} is not in 0–9"));
        }
        Compressor::Blosc { clevel, .. } if clevel > 9 => {
            return unsupported(format!("blosc level {clevel} is not in 0–9"));
        }
        _ => {}
    }
    if let Some(order) = &o.transpose {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        if sorted != (0..ndim).collect::<Vec<_>>() {
            return Err((
                ErrorKind::Axis,
                format!("transpose order {order:?} is not a permutation of the {ndim} axes"),
            ));
        }
        if o.version == ZarrVersion::V2 {
            return unsupported("the transpose codec needs Zarr v3".to_owned());
        }
    }
    if let Some(names) = &o.dimension_names
        && names.len() != ndim
    {
        return Err((
            ErrorKind::Axis,
            format!("{} dimension names for {ndim} axes", names.len()),
        ));
    }
    Ok(())
}

/// The refusal of Zarr writes under a scheduler spread over `processes` processes.
fn not_distributed(store: &Path, array: &str, processes: usize) -> Error {
    err(
        ErrorKind::Unsupported,
        store,
        array,
        format!(
            "Zarr stores are not supported under a scheduler spread over {processes} processes \
             yet: store with a one-process scheduler (or into HDF5, whose stores are made for it)"
        ),
    )
}

impl<T: ZarrElement> ChunkSink<T> for ZarrSink<T> {
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    fn describe(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        let comma = if dims.len() == 1 { "," } else { "" };
        let region = if self.shape == self.full {
            String::new()
        } else {
            let r: Vec<Range<usize>> = self
                .offset
                .iter()
                .zip(&self.shape)
                .map(|(&o, &n)| o..o + n)
                .collect();
            format!(" (region {r:?} of {:?})", self.full)
        };
        format!(
            "Zarr array \"{}\" of shape ({}{comma}){region} in {}",
            self.array,
            dims.join(", "),
            self.store.display()
        )
    }

    fn check_chunks(&self, chunks: &Chunks) -> Result<()> {
        self.check_alignment(chunks)
    }

    /// Zarr sinks write from one process only for now (as [`ZarrStore`] does): built in every
    /// process of a run over several, each would commit its own array, and the blocks are
    /// written in the first process only.
    fn check_processes(&self, processes: usize, _index: usize) -> Result<()> {
        if processes > 1 {
            return Err(not_distributed(&self.store, &self.array, processes));
        }
        Ok(())
    }

    /// In-place updates write into the array while the run may still read it.
    fn writes_in_place(&self) -> Option<String> {
        matches!(self.mode, Mode::InPlace).then(|| store::resource(&self.target))
    }

    /// Every sink writes whole chunks (or shards), merged with the array as it was.
    fn rewrites_units_of(&self) -> Option<String> {
        Some(store::resource(&self.target))
    }

    /// A new array's place must still be free (or hold an array to overwrite), so that a
    /// run whose other sinks commit does not fail here afterwards.
    fn prepare(&self) -> Result<()> {
        match &self.mode {
            Mode::New { overwrite, .. } => self.check_replaceable(*overwrite),
            _ => Ok(()),
        }
    }

    fn commit(&self) -> Result<()> {
        self.commit_keeping_undo()
    }

    fn rollback(&self) {
        ZarrSink::rollback(self);
    }

    fn finish(&self) {
        ZarrSink::finish(self);
    }

    fn abort(&self) {
        let _ = self.discard();
    }

    fn write_block(&self, offset: &[usize], block: &ArrayD<T>) -> Result<()> {
        if *self.state.lock().unwrap_or_else(|e| e.into_inner()) != SinkState::Open {
            return Err(self.fail("the sink was already committed or discarded"));
        }
        let nd = self.shape.len();
        if offset.len() != nd
            || block.ndim() != nd
            || offset
                .iter()
                .zip(block.shape())
                .zip(&self.shape)
                .any(|((&o, &n), &len)| o.checked_add(n).is_none_or(|end| end > len))
        {
            return Err(err(
                ErrorKind::Shape,
                &self.store,
                &self.array,
                format!(
                    "a block of shape {:?} at {offset:?} does not fit the destination's shape {:?}",
                    block.shape(),
                    self.shape
                ),
            ));
        }
        if block.is_empty() {
            return Ok(());
        }
        // In array coordinates.
        let start: Vec<usize> = offset
            .iter()
            .zip(&self.offset)
            .map(|(&o, &r)| o + r)
            .collect();
        let end: Vec<usize> = start
            .iter()
            .zip(block.shape())
            .map(|(&s, &n)| s + n)
            .collect();
        // A second line of defence behind check_chunks: never merge into a chunk another
        // task may be writing.
        for k in 0..nd {
            let c = self.unit[k];
            let region_end = self.offset[k] + self.shape[k];
            if (start[k] != self.offset[k] && !start[k].is_multiple_of(c))
                || (end[k] != region_end && !end[k].is_multiple_of(c))
            {
                return Err(err(
                    ErrorKind::Chunks,
                    &self.store,
                    &self.array,
                    format!(
                        "a block covering {:?} shares stored chunks (shape {:?}) with its neighbours along axis {k}; rechunk so blocks cover whole chunks",
                        start
                            .iter()
                            .zip(&end)
                            .map(|(&s, &e)| s..e)
                            .collect::<Vec<_>>(),
                        self.unit
                    ),
                ));
            }
        }
        let grid: Vec<Range<usize>> = start
            .iter()
            .zip(&end)
            .zip(&self.unit)
            .map(|((&s, &e), &c)| s / c..e.div_ceil(c))
            .collect();
        let mut idx: Vec<usize> = grid.iter().map(|r| r.start).collect();
        loop {
            let cov: Vec<Range<usize>> = (0..nd)
                .map(|k| {
                    let o = idx[k] * self.unit[k];
                    o.max(start[k])..(o + self.unit[k]).min(end[k])
                })
                .collect();
            let id: Vec<u64> = idx.iter().map(|&i| i as u64).collect();
            self.write_chunk(&id, &cov, block, &start)?;
            let mut k = nd;
            loop {
                if k == 0 {
                    return Ok(());
                }
                k -= 1;
                idx[k] += 1;
                if idx[k] < grid[k].end {
                    break;
                }
                idx[k] = grid[k].start;
            }
        }
    }
}

impl<T> Drop for ZarrSink<T> {
    fn drop(&mut self) {
        let state = *self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if state == SinkState::Open {
            match &self.mode {
                Mode::New { temp, created, .. } => {
                    let _ = std::fs::remove_dir_all(temp);
                    remove_empty_dirs(created.iter().rev().map(|(d, _)| d.as_path()));
                }
                Mode::Staged { stage, .. } => {
                    let _ = std::fs::remove_dir_all(stage);
                }
                Mode::InPlace => {}
            }
        }
    }
}

/// Many arrays stored into one Zarr store in **one** computation (dask's
/// `da.to_zarr` of several arrays with `compute=False`, then one `dask.compute`): work the
/// arrays share is done once, and every new array appears under its name only if the whole
/// computation succeeded.
///
/// New arrays are created (under temporary names) when added, so a bad path, option or
/// chunking is reported at once; [`run`](Self::run) computes and stores everything, then
/// renames the arrays into place and moves staged chunks over old ones. Dropping the store
/// without running it, or a failed run, deletes the temporary and staging directories;
/// existing arrays are never touched by a failure (unless written
/// [`in place`](UpdateOptions::in_place): the error then names them as possibly partly
/// written).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ba-zarr-doc-store-{}", std::process::id()));
/// use blockarray_zarr::{ArrayOptions, ZarrStore, from_zarr};
///
/// let x = blockarray::random::Rng::new(7).random::<f64>(&[2000, 500], [500, 500])?;
/// let centered = (&x - &x.mean(Some(&[0]), true)?)?;
/// let mut store = ZarrStore::new(&dir);
/// store
///     .array("raw", &x, &ArrayOptions::new())?
///     .array("centered", &centered, &ArrayOptions::new().chunks([250, 500]))?;
/// // An in-memory result in the same run: x is generated once for all three.
/// let col_std = store.computation().add(&x.std(Some(&[0]), 0.0, false)?);
/// let mut results = store.run()?;
/// assert_eq!(results.take(col_std)?.len(), 500);
/// let back = from_zarr::<f64>(&dir, "centered")?.mean(None, false)?.compute()?;
/// assert!(back.into_iter().next().unwrap().abs() < 1e-12);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ZarrStore {
    path: PathBuf,
    computation: Computation,
    /// The arrays stored into so far (normalised paths).
    arrays: Vec<String>,
    /// Those of them updated in place (a failed run may leave them partly written).
    in_place: Vec<String>,
    /// Directories the new arrays' sinks created (the store, groups on the way). Each sink
    /// removes its own when it is discarded, but one sink's directory may still hold another
    /// sink's temporary then; the store sweeps them all again after a failed or unrun store.
    created: Vec<PathBuf>,
    /// Whether the computation ran and succeeded (then nothing is swept).
    succeeded: bool,
}

impl Drop for ZarrStore {
    fn drop(&mut self) {
        // Drop the sinks first: each deletes its temporary directory.
        drop(std::mem::take(&mut self.computation));
        if !self.succeeded {
            let mut dirs = std::mem::take(&mut self.created);
            // Innermost first: remove_dir only removes empty directories.
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            remove_empty_dirs(dirs.iter().map(PathBuf::as_path));
        }
    }
}

impl std::fmt::Debug for ZarrStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrStore")
            .field("path", &self.path)
            .field("arrays", &self.arrays)
            .finish_non_exhaustive()
    }
}

impl ZarrStore {
    /// A store into the Zarr store at `path` (a directory, created when the first array is
    /// added, if missing).
    pub fn new(path: impl AsRef<Path>) -> ZarrStore {
        ZarrStore {
            path: path.as_ref().to_path_buf(),
            computation: Computation::new(),
            arrays: Vec::new(),
            in_place: Vec::new(),
            created: Vec::new(),
            succeeded: false,
        }
    }

    /// Store `array` as a new array at `path` created with `options` (chunks default to the
    /// array's block shape). A store writes each array once: naming it again (however the
    /// path is spelled) is an error.
    pub fn array<T: ZarrElement>(
        &mut self,
        path: &str,
        array: &BlockArray<T>,
        options: &ArrayOptions,
    ) -> Result<&mut ZarrStore> {
        self.unclaimed(&store::normalize_array_path(&self.path, path)?)?;
        let mut options = options.clone();
        if options.chunks.is_none() && options.shards.is_none() {
            // An empty axis has blocks of length 0; Zarr chunks are at least 1.
            let blocks = array.chunks().max_block_shape();
            options.chunks = Some(blocks.into_iter().map(|b| b.max(1)).collect());
        }
        let sink = Arc::new(ZarrSink::<T>::create(
            &self.path,
            path,
            array.shape(),
            &options,
        )?);
        let name = sink.array().to_owned();
        self.created.extend(sink.created_dirs());
        self.computation
            .store(array, sink as Arc<dyn ChunkSink<T>>)?;
        self.claim(&name)?;
        Ok(self)
    }

    /// Store `array` into the existing array at `path` (its shape and element type must
    /// match), staged: the old chunks are replaced only if the whole run succeeds.
    pub fn existing<T: ZarrElement>(
        &mut self,
        path: &str,
        array: &BlockArray<T>,
    ) -> Result<&mut ZarrStore> {
        self.update(path, array, &UpdateOptions::new())
    }

    /// Store `array` into the existing array at `path` as `options` say: a region of it
    /// (the array's shape must be the region's), staged or in place.
    pub fn update<T: ZarrElement>(
        &mut self,
        path: &str,
        array: &BlockArray<T>,
        options: &UpdateOptions,
    ) -> Result<&mut ZarrStore> {
        self.unclaimed(&store::normalize_array_path(&self.path, path)?)?;
        let sink = Arc::new(ZarrSink::<T>::open(&self.path, path, options)?);
        let name = sink.array().to_owned();
        self.computation
            .store(array, sink as Arc<dyn ChunkSink<T>>)?;
        self.claim(&name)?;
        if options.in_place {
            self.in_place.push(name);
        }
        Ok(self)
    }

    /// Record that this store writes `array` (a normalised path), refusing a second write to
    /// it: both would compute, and chunks the two share would race.
    fn claim(&mut self, array: &str) -> Result<()> {
        self.unclaimed(array)?;
        self.arrays.push(array.to_owned());
        Ok(())
    }

    fn unclaimed(&self, array: &str) -> Result<()> {
        if self.arrays.iter().any(|a| a == array) {
            return Err(err(
                ErrorKind::Index,
                &self.path,
                array,
                "is stored more than once in this computation",
            ));
        }
        Ok(())
    }

    /// The computation the stores run in: add in-memory results or other sinks to compute
    /// them in the same run.
    pub fn computation(&mut self) -> &mut Computation {
        &mut self.computation
    }

    /// Run with the default scheduler, then commit every array.
    pub fn run(self) -> Result<Results> {
        let scheduler = blockarray::default_scheduler();
        Ok(self.run_with(&*scheduler, &dag_core::NoCallbacks)?.0)
    }

    /// Run with `scheduler` and `callbacks`, then commit every array; returns the run's
    /// statistics too. On failure every new array and every staged chunk is deleted and the
    /// error names the store.
    pub fn run_with(
        mut self,
        scheduler: &dyn Scheduler,
        callbacks: &dyn Callbacks,
    ) -> Result<(Results, RunStats)> {
        if scheduler.processes() > 1 {
            // Every process would have made its own sinks and committed them in turn: the
            // last to rename its (empty) array into place would win. Refused on every process
            // alike (the sinks made so far delete their temporaries when dropped).
            return Err(not_distributed(&self.path, "/", scheduler.processes()));
        }
        let run = std::mem::take(&mut self.computation).run_with(scheduler, callbacks);
        self.succeeded = run.is_ok();
        run.map_err(|e| {
            let in_place = if self.in_place.is_empty() {
                String::new()
            } else {
                format!(
                    "; updated in place, {} may be left partly written (chunks old or new, and one \
                     whose write failed may be torn)",
                    self.in_place.join(", ")
                )
            };
            e.context(format!(
                "storing into Zarr store {} failed; no array was created, replaced or \
                 updated by staging{in_place}",
                self.path.display()
            ))
        })
    }
}

/// Store each `(array path, array)` into the Zarr store at `path` in one computation with the
/// default scheduler (see [`ZarrStore`]): new Zarr v3 arrays, chunked like their arrays,
/// compressed with zstd.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ba-zarr-doc-to-{}", std::process::id()));
/// use blockarray::BlockArray;
/// use blockarray_zarr::{from_zarr, to_zarr};
///
/// let x = BlockArray::<f64>::ones(&[100, 100], [25, 50])?;
/// let y = (&x * 2.0).sum(Some(&[1]), false)?;
/// to_zarr(&dir, &[("x", &x), ("group/y", &y)])?;
/// assert_eq!(from_zarr::<f64>(&dir, "group/y")?.compute()?[[3]], 200.0);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_zarr<T: ZarrElement>(
    path: impl AsRef<Path>,
    arrays: &[(&str, &BlockArray<T>)],
) -> Result<()> {
    to_zarr_with(
        path,
        arrays,
        &ArrayOptions::default(),
        &*blockarray::default_scheduler(),
    )
}

/// [`to_zarr`] with array options (applied to every array) and a scheduler.
pub fn to_zarr_with<T: ZarrElement>(
    path: impl AsRef<Path>,
    arrays: &[(&str, &BlockArray<T>)],
    options: &ArrayOptions,
    scheduler: &dyn Scheduler,
) -> Result<()> {
    let mut store = ZarrStore::new(path);
    for (name, array) in arrays {
        store.array(name, array, options)?;
    }
    store
        .run_with(scheduler, &dag_core::NoCallbacks)
        .map(|_| ())
}
