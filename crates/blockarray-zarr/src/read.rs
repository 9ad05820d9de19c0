//! Reading: a Zarr array as a lazy [`BlockArray`], and one array across many stores.

use crate::element::{ZarrElement, type_name};
use crate::store::{self, FsArray, err, io_err};
use blockarray::{BlockArray, ChunkSource, ChunkSpec, DEFAULT_CHUNK_BYTES, ErrorKind, Result};
use dag_core::Tokenizer;
use ndarray::{ArrayD, IxDyn, SliceInfoElem};
use std::marker::PhantomData;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use unsafe_cell_slice::UnsafeCellSlice;
use zarrs::array::{
    ArrayBytesDecodeIntoTarget, ArrayBytesFixedDisjointView, ArrayShardedExt, ArraySubset,
    CodecOptions,
};

/// Options for reading an array.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadOptions {
    chunks: Option<ChunkSpec>,
}

impl ReadOptions {
    /// The defaults: the array's own chunking (see [`from_zarr`]).
    pub fn new() -> ReadOptions {
        ReadOptions::default()
    }

    /// Cut the array into these blocks instead of its stored chunks. Blocks made of whole
    /// stored chunks decode each chunk once; other blocks decode every chunk they touch.
    #[must_use]
    pub fn chunks(mut self, chunks: impl Into<ChunkSpec>) -> ReadOptions {
        self.chunks = Some(chunks.into());
        self
    }
}

/// What an array is: shape, element type, storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayInfo {
    /// The store (absolute path of its directory).
    pub store: PathBuf,
    /// The array's path in the store (`/` for an array at the root).
    pub array: String,
    /// The Zarr format: 2 or 3.
    pub zarr_format: u8,
    /// The shape.
    pub shape: Vec<usize>,
    /// The data type's name (`"float64"`, `"int16"`, …).
    pub dtype: String,
    /// The chunk grid's chunk shape: the shard shape for a sharded array.
    pub chunks: Vec<usize>,
    /// The inner chunk shape of a sharded array.
    pub inner_chunks: Option<Vec<usize>>,
    /// The codec pipeline, in order, as `name(setting, …)` (`"bytes(little)"`,
    /// `"zstd(level=1)"`, `"sharding_indexed[bytes(little), zstd(level=0)]"`; for v2 the
    /// filters and the compressor).
    pub codecs: Vec<String>,
    /// The fill value, as its metadata JSON.
    pub fill_value: String,
}

/// Describe array `array` of the store at `store` without reading its chunks.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ba-zarr-doc-info-{}", std::process::id()));
/// use blockarray::BlockArray;
/// use blockarray_zarr::{ArrayOptions, Compressor, ZarrStore, array_info};
///
/// let x = BlockArray::<i32>::ones(&[100, 60], [50, 30])?;
/// let mut store = ZarrStore::new(&dir);
/// store.array("/x", &x, &ArrayOptions::new().compressor(Compressor::Gzip(4)))?;
/// store.run()?;
/// let info = array_info(&dir, "x")?;
/// assert_eq!((info.zarr_format, info.shape.as_slice(), info.dtype.as_str()), (3, &[100, 60][..], "int32"));
/// assert_eq!(info.chunks, [50, 30]);
/// assert_eq!(info.codecs, ["bytes(little)", "gzip(level=4)"]);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn array_info(store: impl AsRef<Path>, array: &str) -> Result<ArrayInfo> {
    let store = store.as_ref();
    let name = store::normalize_array_path(store, array)?;
    let root = store::existing_store(store, &name)?;
    let a = store::open_array(&root, &name)?;
    let grid = Grid::of(&a, &root, &name)?;
    let meta = serde_json::to_value(a.metadata()).unwrap_or_default();
    Ok(ArrayInfo {
        zarr_format: if store::is_v2(&a) { 2 } else { 3 },
        shape: grid.shape,
        dtype: type_name(a.data_type()),
        chunks: grid.chunk,
        inner_chunks: grid.inner,
        codecs: codec_names(&meta),
        fill_value: meta
            .get("fill_value")
            .map_or_else(String::new, ToString::to_string),
        store: root,
        array: name,
    })
}

/// `name(k=v, …)` for each codec in v3 metadata, or the filters and compressor of v2.
fn codec_names(meta: &serde_json::Value) -> Vec<String> {
    fn one(c: &serde_json::Value) -> String {
        let name = c
            .get("name")
            .or_else(|| c.get("id"))
            .and_then(|n| n.as_str())
            .unwrap_or("?");
        let conf = c.get("configuration").cloned().unwrap_or_else(|| {
            // v2: the settings sit beside the id.
            let mut m = c.as_object().cloned().unwrap_or_default();
            m.remove("id");
            serde_json::Value::Object(m)
        });
        if name == "sharding_indexed" {
            let inner = conf
                .get("codecs")
                .and_then(|c| c.as_array())
                .map(|cs| cs.iter().map(one).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            return format!("{name}[{inner}]");
        }
        if name == "bytes" {
            return match conf.get("endian").and_then(|e| e.as_str()) {
                Some(e) => format!("bytes({e})"),
                None => "bytes".to_owned(),
            };
        }
        let settings: Vec<String> = conf
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| match v.as_str() {
                        Some(s) => format!("{k}={s}"),
                        None => format!("{k}={v}"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if settings.is_empty() {
            name.to_owned()
        } else {
            format!("{name}({})", settings.join(", "))
        }
    }
    if let Some(codecs) = meta.get("codecs").and_then(|c| c.as_array()) {
        return codecs.iter().map(one).collect();
    }
    let mut out: Vec<String> = meta
        .get("filters")
        .and_then(|f| f.as_array())
        .map(|fs| fs.iter().map(one).collect())
        .unwrap_or_default();
    if let Some(c) = meta.get("compressor").filter(|c| !c.is_null()) {
        out.push(one(c));
    }
    out
}

/// An array's shape and regular chunk grid, read from its metadata.
pub(crate) struct Grid {
    pub(crate) shape: Vec<usize>,
    /// The chunk grid's chunk shape (shards, for a sharded array).
    pub(crate) chunk: Vec<usize>,
    /// The inner chunk shape of a sharded array.
    pub(crate) inner: Option<Vec<usize>>,
}

/// The largest element of any Zarr type this crate reads (`complex128`), bytes.
const MAX_ITEMSIZE: usize = 16;

impl Grid {
    pub(crate) fn of(a: &FsArray, store: &Path, array: &str) -> Result<Grid> {
        let meta = serde_json::to_value(a.metadata()).unwrap_or_default();
        let usizes = |v: Option<&serde_json::Value>| -> Option<Vec<usize>> {
            v?.as_array()?
                .iter()
                .map(|x| x.as_u64().map(|u| u as usize))
                .collect()
        };
        let chunk = if store::is_v2(a) {
            usizes(meta.get("chunks"))
        } else {
            let grid = meta.get("chunk_grid");
            let name = grid.and_then(|g| g.get("name")).and_then(|n| n.as_str());
            if name != Some("regular") {
                return Err(err(
                    ErrorKind::Unsupported,
                    store,
                    array,
                    format!(
                        "the chunk grid {} is not supported (only \"regular\")",
                        name.unwrap_or("?")
                    ),
                ));
            }
            usizes(
                grid.and_then(|g| g.get("configuration"))
                    .and_then(|c| c.get("chunk_shape")),
            )
        };
        let chunk = chunk.ok_or_else(|| io_err(store, array, "the metadata has no chunk shape"))?;
        let inner: Option<Vec<usize>> = a
            .subchunk_shape()
            .map(|s| s.iter().map(|n| n.get() as usize).collect());
        // A chunk is decoded into one buffer: its bytes must be a size a buffer can have.
        for c in std::iter::once(&chunk).chain(inner.as_ref()) {
            if blockarray::shape_bytes(c, MAX_ITEMSIZE) > isize::MAX as usize {
                return Err(err(
                    ErrorKind::Chunks,
                    store,
                    array,
                    format!("the chunk shape {c:?} in the metadata is too large for memory"),
                ));
            }
        }
        Ok(Grid {
            shape: a.shape().iter().map(|&n| n as usize).collect(),
            chunk,
            inner,
        })
    }
}

/// Codec options for work done inside one task: the scheduler already runs one task per core,
/// so zarrs must not fan a chunk's decoding out over its own thread pool too.
pub(crate) fn task_codec_options() -> CodecOptions {
    CodecOptions::default().with_concurrent_target(1)
}

/// An array in a Zarr store, as a [`ChunkSource`]: reads any region, inside a task.
///
/// Built by [`from_zarr`] and friends; use it directly to give
/// [`BlockArray::from_source`] your own chunking.
///
/// Reads take no lock: each task opens, reads and decodes the chunks it needs, so chunks are
/// decoded in parallel on the scheduler's workers. A region that is exactly one stored chunk
/// is decoded straight into the block's memory; a region over several chunks decodes each
/// chunk's part into its place; a strided region decodes only the chunks holding a selected
/// element. Missing chunks read as the fill value.
pub struct ZarrSource<T> {
    store: PathBuf,
    array: String,
    zarr: FsArray,
    shape: Vec<usize>,
    chunk: Vec<usize>,
    inner: Option<Vec<usize>>,
    /// How whole chunks can be decoded without zarrs, if they can.
    direct: Option<Direct>,
    options: CodecOptions,
    token: u64,
    _type: PhantomData<fn() -> T>,
}

/// A codec pipeline simple enough to decode a chunk file straight into a block: the elements
/// in the machine's byte order, raw or in one zstd frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direct {
    Raw,
    Zstd,
}

impl Direct {
    /// The direct pipeline of an array with metadata `meta`, if it has one.
    fn of(meta: &serde_json::Value, v2: bool, itemsize: usize) -> Option<Direct> {
        if !cfg!(target_endian = "little") {
            return None;
        }
        if v2 {
            let little = meta.get("dtype")?.as_str()?.starts_with(['<', '|']);
            let plain = meta.get("filters").is_none_or(|f| f.is_null())
                && meta.get("order").and_then(|o| o.as_str()) == Some("C");
            if !(little && plain) {
                return None;
            }
            return match meta.get("compressor") {
                None | Some(serde_json::Value::Null) => Some(Direct::Raw),
                Some(c) if c.get("id").and_then(|i| i.as_str()) == Some("zstd") => {
                    Some(Direct::Zstd)
                }
                _ => None,
            };
        }
        if meta
            .get("storage_transformers")
            .and_then(|t| t.as_array())
            .is_some_and(|t| !t.is_empty())
        {
            return None;
        }
        let codecs = meta.get("codecs")?.as_array()?;
        let bytes = codecs.first()?;
        let endian = bytes
            .get("configuration")
            .and_then(|c| c.get("endian"))
            .and_then(|e| e.as_str());
        let native = endian == Some("little") || (endian.is_none() && itemsize == 1);
        if bytes.get("name")?.as_str()? != "bytes" || !native {
            return None;
        }
        match codecs.get(1..)? {
            [] => Some(Direct::Raw),
            [z] if z.get("name").and_then(|n| n.as_str()) == Some("zstd") => Some(Direct::Zstd),
            _ => None,
        }
    }
}

thread_local! {
    /// Each worker's zstd context and buffer for compressed chunk bytes, reused across tasks.
    static ZSTD: std::cell::RefCell<Option<(zstd::bulk::Decompressor<'static>, Vec<u8>)>> =
        const { std::cell::RefCell::new(None) };
}

impl<T: ZarrElement> ZarrSource<T> {
    /// Open array `array` of the store at `store`, checking that it holds `T`.
    ///
    /// Errors (each naming the store and the array): the store is missing or not a
    /// directory; no array at that path (the message lists the arrays there); a group; an
    /// unsupported codec, data type or chunk grid ([`ErrorKind::Unsupported`]); elements of
    /// another type ([`ErrorKind::Type`], naming both).
    pub fn open(store: impl AsRef<Path>, array: &str) -> Result<ZarrSource<T>> {
        let store = store.as_ref();
        let name = store::normalize_array_path(store, array)?;
        let root = store::existing_store(store, &name)?;
        let zarr = store::open_array(&root, &name)?;
        if !T::accepts(zarr.data_type()) {
            return Err(err(
                ErrorKind::Type,
                &root,
                &name,
                format!(
                    "the array holds {}, not {} (open it as that type, or convert with astype after reading)",
                    type_name(zarr.data_type()),
                    T::DTYPE
                ),
            ));
        }
        let grid = Grid::of(&zarr, &root, &name)?;
        let meta = serde_json::to_value(zarr.metadata()).unwrap_or_default();
        let direct = T::bytes_mut(&mut [T::default()])
            .and_then(|_| Direct::of(&meta, store::is_v2(&zarr), T::itemsize()));
        let mut t = Tokenizer::new();
        t.write_str(&root.to_string_lossy())
            .write_str(&name)
            .write_str(T::DTYPE);
        store::content_token(&store::node_dir(&root, &name), &mut t);
        Ok(ZarrSource {
            store: root,
            array: name,
            zarr,
            shape: grid.shape,
            chunk: grid.chunk,
            inner: grid.inner,
            direct,
            options: task_codec_options(),
            token: t.finish(),
            _type: PhantomData,
        })
    }

    /// The store (absolute path).
    pub fn store(&self) -> &Path {
        &self.store
    }

    /// The array's path in the store.
    pub fn array(&self) -> &str {
        &self.array
    }

    /// The chunk grid's chunk shape (the shard shape of a sharded array).
    pub fn chunk_shape(&self) -> &[usize] {
        &self.chunk
    }

    /// The inner chunk shape, for a sharded array.
    pub fn inner_chunk_shape(&self) -> Option<&[usize]> {
        self.inner.as_deref()
    }

    fn fail_chunk(&self, idx: &[u64], e: impl std::fmt::Display) -> blockarray::Error {
        io_err(
            &self.store,
            &self.array,
            format!(
                "chunk \"{}\" cannot be read: {e}",
                self.zarr.chunk_key(idx).as_str()
            ),
        )
    }

    /// Whether chunk reads skip zarrs (see [`ZarrSource::read`]).
    pub fn reads_directly(&self) -> bool {
        self.direct.is_some()
    }

    /// Decode the whole stored chunk `idx` straight into `out` (its elements, C order): one
    /// read of the file and, for zstd, one decompression into the block's memory. `Ok(false)`
    /// if the chunk was never written (the caller fills it).
    fn decode_direct(&self, direct: Direct, idx: &[u64], out: &mut [T]) -> Result<bool> {
        use std::io::Read;
        let key = self.zarr.chunk_key(idx);
        let path = self.store.join(key.as_str());
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.fail_chunk(idx, e)),
        };
        let out = T::bytes_mut(out).expect("direct reads are only for plain-data types");
        let want = out.len();
        match direct {
            Direct::Raw => {
                let len = file.metadata().map_err(|e| self.fail_chunk(idx, e))?.len();
                if len != want as u64 {
                    return Err(self.fail_chunk(
                        idx,
                        format!("the file holds {len} bytes, not the chunk's {want}"),
                    ));
                }
                file.read_exact(out).map_err(|e| self.fail_chunk(idx, e))?;
            }
            Direct::Zstd => ZSTD.with(|cell| {
                let mut cell = cell.borrow_mut();
                if cell.is_none() {
                    let d = zstd::bulk::Decompressor::new().map_err(|e| self.fail_chunk(idx, e))?;
                    *cell = Some((d, Vec::new()));
                }
                let (d, buf) = cell.as_mut().expect("just made");
                buf.clear();
                file.read_to_end(buf).map_err(|e| self.fail_chunk(idx, e))?;
                let n = d
                    .decompress_to_buffer(buf.as_slice(), out)
                    .map_err(|e| self.fail_chunk(idx, format!("zstd: {e}")))?;
                if n != want {
                    return Err(self.fail_chunk(
                        idx,
                        format!("zstd: decompressed to {n} bytes, not the chunk's {want}"),
                    ));
                }
                Ok(())
            })?,
        }
        Ok(true)
    }

    /// Decode `part` (array coordinates, inside chunk `idx`) into `out` (the elements of a
    /// C-order array of shape `out_shape`) at `at` (the part's first position there).
    fn decode_part(
        &self,
        idx: &[u64],
        part: &[Range<u64>],
        out: &mut [T],
        out_shape: &[u64],
        at: &[u64],
    ) -> Result<()> {
        let subset = ArraySubset::new_with_ranges(part);
        let Some(bytes) = T::bytes_mut(out) else {
            // bool: zarrs checks every byte is 0 or 1 on its way to `Vec<bool>`.
            let values: Vec<T> = self
                .zarr
                .retrieve_array_subset_opt(&subset, &self.options)
                .map_err(|e| self.fail_chunk(idx, e))?;
            let piece = ArrayD::from_shape_vec(IxDyn(&shape_of(part)), values)
                .map_err(|e| self.fail_chunk(idx, e))?;
            let mut whole = ndarray::ArrayViewMutD::from_shape(
                IxDyn(&out_shape.iter().map(|&n| n as usize).collect::<Vec<_>>()),
                out,
            )
            .map_err(|e| self.fail_chunk(idx, e))?;
            let dst: Vec<SliceInfoElem> = at
                .iter()
                .zip(part)
                .map(|(&a, p)| (a as usize..(a + p.end - p.start) as usize).into())
                .collect();
            whole.slice_mut(dst.as_slice()).assign(&piece);
            return Ok(());
        };
        let target_subset = ArraySubset::new_with_start_shape(
            at.to_vec(),
            part.iter().map(|p| p.end - p.start).collect(),
        )
        .map_err(|e| self.fail_chunk(idx, e))?;
        // SAFETY: this is the only view of `out` alive: one disjoint view, trivially.
        let mut view = unsafe {
            ArrayBytesFixedDisjointView::new(
                UnsafeCellSlice::new(bytes),
                T::itemsize(),
                out_shape,
                target_subset,
            )
        }
        .map_err(|e| self.fail_chunk(idx, e))?;
        self.zarr
            .retrieve_array_subset_into_opt(
                &subset,
                ArrayBytesDecodeIntoTarget::from(&mut view),
                &self.options,
            )
            .map_err(|e| self.fail_chunk(idx, e))
    }

    fn check_region(&self, region: &[Range<usize>], steps: &[usize]) -> Result<()> {
        if region.len() != self.shape.len()
            || steps.len() != region.len()
            || steps.contains(&0)
            || region
                .iter()
                .zip(&self.shape)
                .any(|(r, &n)| r.start > r.end || r.end > n)
        {
            return Err(io_err(
                &self.store,
                &self.array,
                format!(
                    "region {region:?} (steps {steps:?}) is outside the shape {:?}",
                    self.shape
                ),
            ));
        }
        Ok(())
    }
}

/// The lengths of `ranges`.
fn shape_of(ranges: &[Range<u64>]) -> Vec<usize> {
    ranges.iter().map(|r| (r.end - r.start) as usize).collect()
}

/// Along one axis, the stored chunks holding the positions `r.start, r.start + step, …`
/// (below `r.end`), as `(chunk index, first selected position's index in the output, number
/// of selected positions in that chunk)`.
fn axis_groups(r: &Range<usize>, step: usize, chunk: usize) -> Vec<(usize, usize, usize)> {
    let total = r.len().div_ceil(step);
    let mut out = Vec::new();
    let mut k = 0;
    while k < total {
        let pos = r.start + k * step;
        let c = pos / chunk;
        let chunk_end = ((c + 1) * chunk).min(r.end);
        let n = (chunk_end - pos).div_ceil(step).min(total - k);
        out.push((c, k, n));
        k += n;
    }
    out
}

impl<T: ZarrElement> ChunkSource<T> for ZarrSource<T> {
    /// The array's directory: a computation reading it cannot store into it in place.
    fn resource(&self) -> Option<String> {
        Some(store::resource(&store::node_dir(&self.store, &self.array)))
    }

    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    fn read(&self, region: &[Range<usize>]) -> Result<ArrayD<T>> {
        self.read_strided(region, &vec![1; region.len()])
    }

    fn read_strided(&self, region: &[Range<usize>], steps: &[usize]) -> Result<ArrayD<T>> {
        self.check_region(region, steps)?;
        let out_dims: Vec<usize> = region
            .iter()
            .zip(steps)
            .map(|(r, &s)| r.len().div_ceil(s))
            .collect();
        let total: usize = out_dims.iter().product();
        let mut out = vec![T::default(); total];
        if total > 0 {
            let out_shape: Vec<u64> = out_dims.iter().map(|&n| n as u64).collect();
            let groups: Vec<Vec<(usize, usize, usize)>> = region
                .iter()
                .zip(steps)
                .zip(&self.chunk)
                .map(|((r, &s), &c)| axis_groups(r, s, c))
                .collect();
            // Odometer over the touched chunks (C order).
            let mut pick = vec![0usize; groups.len()];
            loop {
                let mut idx = Vec::with_capacity(groups.len());
                let mut src = Vec::with_capacity(groups.len());
                let mut at = Vec::with_capacity(groups.len());
                for (axis, g) in groups.iter().enumerate() {
                    let (c, k0, n) = g[pick[axis]];
                    let first = region[axis].start + k0 * steps[axis];
                    let last = first + (n - 1) * steps[axis];
                    idx.push(c as u64);
                    src.push(first as u64..last as u64 + 1);
                    at.push(k0 as u64);
                }
                let whole_chunk = groups.iter().all(|g| g.len() == 1)
                    && src
                        .iter()
                        .zip(&self.chunk)
                        .all(|(r, &c)| r.start % c as u64 == 0 && r.end - r.start == c as u64);
                if let (Some(direct), true, true) =
                    (self.direct, whole_chunk, steps.iter().all(|&s| s == 1))
                {
                    // The block is one whole stored chunk: straight from the file into it.
                    if !self.decode_direct(direct, &idx, &mut out)? {
                        self.decode_part(&idx, &src, &mut out, &out_shape, &at)?;
                    }
                } else if steps.iter().all(|&s| s == 1) {
                    self.decode_part(&idx, &src, &mut out, &out_shape, &at)?;
                } else {
                    // Decode the selected positions' bounding box in this chunk, then pick.
                    let dims = shape_of(&src);
                    let mut tmp = vec![T::default(); dims.iter().product()];
                    let tmp_shape: Vec<u64> = dims.iter().map(|&n| n as u64).collect();
                    self.decode_part(&idx, &src, &mut tmp, &tmp_shape, &vec![0; dims.len()])?;
                    let tmp = ArrayD::from_shape_vec(IxDyn(&dims), tmp)
                        .map_err(|e| self.fail_chunk(&idx, e))?;
                    let sel: Vec<SliceInfoElem> = steps
                        .iter()
                        .map(|&s| SliceInfoElem::Slice {
                            start: 0,
                            end: None,
                            step: s as isize,
                        })
                        .collect();
                    let dst: Vec<SliceInfoElem> = at
                        .iter()
                        .zip(&groups)
                        .zip(&pick)
                        .map(|((&a, g), &p)| (a as usize..a as usize + g[p].2).into())
                        .collect();
                    let mut whole = ndarray::ArrayViewMutD::from_shape(IxDyn(&out_dims), &mut out)
                        .map_err(|e| self.fail_chunk(&idx, e))?;
                    whole
                        .slice_mut(dst.as_slice())
                        .assign(&tmp.slice(sel.as_slice()));
                }
                let mut k = groups.len();
                loop {
                    if k == 0 {
                        return ArrayD::from_shape_vec(IxDyn(&out_dims), out)
                            .map_err(|e| io_err(&self.store, &self.array, e));
                    }
                    k -= 1;
                    pick[k] += 1;
                    if pick[k] < groups[k].len() {
                        break;
                    }
                    pick[k] = 0;
                }
            }
        }
        ArrayD::from_shape_vec(IxDyn(&out_dims), out)
            .map_err(|e| io_err(&self.store, &self.array, e))
    }

    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_u64(self.token);
    }

    fn name(&self) -> &str {
        "zarr"
    }

    fn natural_chunks(&self) -> Option<Vec<usize>> {
        // A shard is the unit stored together, but can be large: read whole shards when one
        // fits the default block size, else the inner chunks (each task then reads the shard
        // index and its own inner chunks).
        let bytes = blockarray::shape_bytes(&self.chunk, T::itemsize());
        match &self.inner {
            Some(inner) if bytes > DEFAULT_CHUNK_BYTES => Some(inner.clone()),
            _ => Some(self.chunk.clone()),
        }
    }
}

/// Array `array` of the Zarr store at `store` as a lazy array, in the array's own chunks (for
/// a sharded array: whole shards when one holds at most 128 MiB, else the inner chunks).
///
/// Nothing is read now but the metadata (and a `stat` of each stored chunk, for the key
/// token); each block is read and decoded inside the task that needs it, so slicing the
/// array reads only the chunks the slice touches. Zarr v2 and v3 arrays, sharded or not, with
/// the codecs `bytes` (either byte order), `transpose`, `zstd`, `gzip`, `zlib`, `blosc`,
/// `crc32c` and `sharding_indexed`, read the same way.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ba-zarr-doc-read-{}", std::process::id()));
/// use blockarray::{BlockArray, s};
/// use blockarray_zarr::{from_zarr, to_zarr};
///
/// let x = BlockArray::<f64>::from_fn(&[1000, 800], [250, 200], "i+j", |i| (i[0] + i[1]) as f64)?;
/// to_zarr(&dir, &[("/x", &x)])?;
///
/// let y: BlockArray<f64> = from_zarr(&dir, "/x")?;
/// assert_eq!(y.chunks().max_block_shape(), [250, 200]); // the store's chunks
/// let corner = y.slice(s![..2, ..3])?.compute()?;         // decodes one chunk
/// assert_eq!(corner.into_raw_vec_and_offset().0, [0.0, 1.0, 2.0, 1.0, 2.0, 3.0]);
/// assert_eq!(y.sum(None, false)?.compute()?.into_iter().next(), Some(719_200_000.0));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn from_zarr<T: ZarrElement>(store: impl AsRef<Path>, array: &str) -> Result<BlockArray<T>> {
    from_zarr_with(store, array, &ReadOptions::default())
}

/// [`from_zarr`] with options (the blocks to cut the array into).
pub fn from_zarr_with<T: ZarrElement>(
    store: impl AsRef<Path>,
    array: &str,
    options: &ReadOptions,
) -> Result<BlockArray<T>> {
    let source = ZarrSource::<T>::open(store, array)?;
    let (root, name) = (source.store.clone(), source.array.clone());
    BlockArray::from_source(Arc::new(source), options.chunks.clone())
        .map_err(|e| e.context(format!("Zarr store {}, array \"{name}\"", root.display())))
}

/// The stores (or any paths) matching a glob pattern (`data/day-*.zarr`), sorted; an error if
/// the pattern is malformed or matches nothing ([`blockarray::glob_paths`]).
pub fn glob_stores(pattern: &str) -> Result<Vec<PathBuf>> {
    blockarray::glob_paths(pattern, "store")
}

/// Open `array` in every one of `stores` and join the arrays along `axis`: stacked on a new
/// axis (`stack`) or concatenated along an existing one, shapes checked by
/// [`blockarray::join_paths`] (which names the store that does not fit).
fn join_stores<T: ZarrElement, P: AsRef<Path>>(
    stores: &[P],
    array: &str,
    options: &ReadOptions,
    axis: usize,
    stack: bool,
) -> Result<BlockArray<T>> {
    blockarray::join_paths(
        &format!("array \"{array}\""),
        "Zarr store",
        stores,
        |p| from_zarr_with(p, array, options),
        axis,
        stack,
    )
}

/// The same array from many stores stacked along a new axis `axis` (all of one shape and
/// type; each store's blocks stay lazy).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ba-zarr-doc-stack-{}", std::process::id()));
/// use blockarray::BlockArray;
/// use blockarray_zarr::{ReadOptions, glob_stores, stack_zarr, to_zarr};
///
/// for day in 0..3 {
///     let t = BlockArray::<f32>::full(&[4, 5], day as f32, [2, 5])?;
///     to_zarr(dir.join(format!("day-{day}.zarr")), &[("temperature", &t)])?;
/// }
/// let stores = glob_stores(&format!("{}/day-*.zarr", dir.display()))?;
/// let all = stack_zarr::<f32, _>(&stores, "temperature", 0, &ReadOptions::new())?;
/// assert_eq!(all.shape(), [3, 4, 5]);
/// assert!(all.mean(Some(&[0]), false)?.compute()?.iter().all(|&v| v == 1.0));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn stack_zarr<T: ZarrElement, P: AsRef<Path>>(
    stores: &[P],
    array: &str,
    axis: usize,
    options: &ReadOptions,
) -> Result<BlockArray<T>> {
    join_stores(stores, array, options, axis, true)
}

/// The same array from many stores joined along the existing axis `axis` (shapes must agree
/// on every other axis).
pub fn concatenate_zarr<T: ZarrElement, P: AsRef<Path>>(
    stores: &[P],
    array: &str,
    axis: usize,
    options: &ReadOptions,
) -> Result<BlockArray<T>> {
    join_stores(stores, array, options, axis, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_positions_are_grouped_by_chunk() {
        // Positions 1, 4, 7, 10, 13 with chunks of 5: chunks 0 (1, 4), 1 (7), 2 (10, 13).
        assert_eq!(
            axis_groups(&(1..14), 3, 5),
            [(0, 0, 2), (1, 2, 1), (2, 3, 2)]
        );
        // A step longer than a chunk skips chunks.
        assert_eq!(axis_groups(&(0..20), 12, 5), [(0, 0, 1), (2, 1, 1)]);
        assert_eq!(axis_groups(&(3..4), 1, 5), [(0, 0, 1)]);
        assert_eq!(axis_groups(&(0..10), 1, 5), [(0, 0, 5), (1, 5, 5)]);
    }
}
