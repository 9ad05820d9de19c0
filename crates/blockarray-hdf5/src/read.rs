//! Reading: an HDF5 dataset as a lazy [`BlockArray`], and one dataset across many files.

use crate::direct::{self, Stage};
use crate::element::Hdf5Element;
use crate::file::{self, Access, OpenFile, err, io_err};
use blockarray::{BlockArray, ChunkSource, ChunkSpec, ErrorKind, Result};
use dag_core::Tokenizer;
use hdf5::{Hyperslab, Selection, SliceOrIndex};
use ndarray::{ArrayD, CowArray, IxDyn, SliceInfoElem};
use std::marker::PhantomData;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How chunk data moves between a dataset and memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChunkIo {
    /// Direct chunk I/O where it applies: for a chunked dataset whose filters are shuffle
    /// and/or deflate and whose element type is the native one, raw chunks are read
    /// (`H5Dread_chunk`) or written (`H5Dwrite_chunk`) under the HDF5 lock and
    /// (de)compressed outside it, in parallel. Anything else uses the library path.
    #[default]
    Auto,
    /// Always `H5Dread` / `H5Dwrite`: HDF5 runs the filters itself, under the lock, so
    /// compressed data is (de)compressed one chunk at a time — h5py's behaviour, kept for
    /// comparison and as a fallback.
    Library,
}

/// Options for reading a dataset as an array.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadOptions {
    chunks: Option<ChunkSpec>,
    io: ChunkIo,
}

impl ReadOptions {
    /// The defaults: the dataset's own chunking (automatic chunking for a contiguous dataset),
    /// [`ChunkIo::Auto`].
    pub fn new() -> ReadOptions {
        ReadOptions::default()
    }

    /// Cut the array into these chunks instead of the dataset's own. Blocks aligned with the
    /// dataset's chunks (the same shape or whole multiples) read each stored chunk once.
    #[must_use]
    pub fn chunks(mut self, chunks: impl Into<ChunkSpec>) -> ReadOptions {
        self.chunks = Some(chunks.into());
        self
    }

    /// Choose how chunks are read.
    #[must_use]
    pub fn io(mut self, io: ChunkIo) -> ReadOptions {
        self.io = io;
        self
    }
}

/// What a dataset is: shape, element type, storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetInfo {
    /// The file (absolute path).
    pub file: PathBuf,
    /// The dataset's path in the file.
    pub dataset: String,
    /// The shape.
    pub shape: Vec<usize>,
    /// NumPy's name for the element type (`"float64"`, …), or HDF5's description.
    pub dtype: String,
    /// The chunk shape, for a chunked dataset.
    pub chunks: Option<Vec<usize>>,
    /// The filter pipeline, in order (`"shuffle"`, `"deflate(4)"`, `"fletcher32"`, …).
    pub filters: Vec<String>,
    /// Bytes the dataset occupies in the file.
    pub storage_bytes: u64,
}

/// Describe `dataset` in `file` without reading its data.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ba-hdf5-doc-info-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("info.h5");
/// use blockarray::BlockArray;
/// use blockarray_hdf5::{DatasetOptions, Hdf5Store, dataset_info};
///
/// let x = BlockArray::<i32>::ones(&[100, 60], [50, 30])?;
/// let mut store = Hdf5Store::new(&path);
/// store.dataset("/x", &x, &DatasetOptions::new().deflate(4).shuffle(true))?;
/// store.run()?;
/// let info = dataset_info(&path, "/x")?;
/// assert_eq!(info.shape, [100, 60]);
/// assert_eq!(info.dtype, "int32");
/// assert_eq!(info.chunks, Some(vec![50, 30]));
/// assert_eq!(info.filters, ["shuffle", "deflate(4)"]);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn dataset_info(path: impl AsRef<Path>, dataset: &str) -> Result<DatasetInfo> {
    let path = path.as_ref();
    let name = file::normalize_dataset_path(path, dataset)?;
    let f = file::open_file(path, Access::Read, &name)?;
    f.with(|h| {
        let ds = file::open_dataset(h, f.path(), &name)?;
        let dtype = ds.dtype().map_err(|e| {
            io_err(
                f.path(),
                &name,
                format!("cannot read the element type: {e}"),
            )
        })?;
        Ok(DatasetInfo {
            file: f.path().to_path_buf(),
            dataset: name.clone(),
            shape: ds.shape(),
            dtype: file::type_name(&dtype),
            chunks: ds.chunk(),
            filters: ds.filters().iter().map(filter_name).collect(),
            storage_bytes: ds.storage_size(),
        })
    })
}

fn filter_name(f: &hdf5::filters::Filter) -> String {
    use hdf5::filters::Filter;
    match f {
        Filter::Deflate(l) => format!("deflate({l})"),
        Filter::Shuffle => "shuffle".to_owned(),
        Filter::Fletcher32 => "fletcher32".to_owned(),
        Filter::SZip(..) => "szip".to_owned(),
        Filter::NBit => "nbit".to_owned(),
        Filter::ScaleOffset(_) => "scaleoffset".to_owned(),
        Filter::User(id, _) => format!("filter {id}"),
    }
}

/// A dataset in an HDF5 file, as a [`ChunkSource`]: reads any region, inside a task.
///
/// Built by [`from_hdf5`] and friends; use it directly to give
/// [`BlockArray::from_source`] your own chunking. The file stays open (shared with every
/// other source and sink on it in this process) while the source lives.
pub struct Hdf5Source<T> {
    file: Arc<OpenFile>,
    dataset: String,
    shape: Vec<usize>,
    /// The dataset's chunk shape, when chunked.
    chunk: Option<Vec<usize>>,
    /// The filter stages, when direct chunk reads apply.
    stages: Option<Vec<Stage>>,
    /// The dataset is chunked, unfiltered and stored in `T`'s native type (with a type whose
    /// every bit pattern is valid): chunks can be read with `pread`, without the lock, when
    /// the file allows it ([`direct::lock_free_reader`]).
    raw: bool,
    io: ChunkIo,
    token: u64,
    _type: PhantomData<fn() -> T>,
}

impl<T: Hdf5Element> Hdf5Source<T> {
    /// Open `dataset` in `file`, checking that it is a dataset of `T`.
    ///
    /// Errors (each naming the file and the dataset): the file is missing or not HDF5, the
    /// path is missing or a group, the element type is not `T` (kind
    /// [`ErrorKind::Type`], naming both types).
    pub fn open(path: impl AsRef<Path>, dataset: &str, io: ChunkIo) -> Result<Hdf5Source<T>> {
        let path = path.as_ref();
        let name = file::normalize_dataset_path(path, dataset)?;
        let f = file::open_file(path, Access::Read, &name)?;
        let (shape, chunk, stages, raw) = f.with(|h| {
            let ds = file::open_dataset(h, f.path(), &name)?;
            let (direct_ok, _) = check_type::<T>(&ds, f.path(), &name)?;
            let chunk = if ds.is_chunked() { ds.chunk() } else { None };
            let filters = direct_ok.then(|| direct::chunk_filters(&ds)).flatten();
            let stages = filters
                .as_ref()
                .and_then(|f| direct::pipeline(f, T::itemsize()));
            let raw =
                filters.as_ref().is_some_and(Vec::is_empty) && blockarray::plain_number::<T>();
            Ok((ds.shape(), chunk, stages, raw))
        })?;
        // The file's identity too: a source reads the file it opened even after another was
        // renamed over its path, and the two may have one length and modification time.
        let (mtime, len) = file::stamp(f.path());
        let (dev, ino) = f.identity().unwrap_or((0, 0));
        let mut t = Tokenizer::new();
        t.write_str(&f.path().to_string_lossy())
            .write_str(&name)
            .write_u64(dev)
            .write_u64(ino)
            .write_u64(mtime)
            .write_u64(len)
            .write(&shape)
            .write_str(T::DTYPE);
        Ok(Hdf5Source {
            file: f,
            dataset: name,
            shape,
            chunk,
            stages,
            raw,
            io,
            token: t.finish(),
            _type: PhantomData,
        })
    }

    /// The file (absolute path).
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The dataset's path in the file.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    /// The dataset's chunk shape, if it is chunked.
    pub fn chunk_shape(&self) -> Option<&[usize]> {
        self.chunk.as_deref()
    }

    /// Whether reads use direct chunk I/O (see [`ChunkIo::Auto`]).
    pub fn reads_directly(&self) -> bool {
        self.io == ChunkIo::Auto && self.stages.is_some()
    }

    fn library_read(&self, region: &[Range<usize>]) -> Result<ArrayD<T>> {
        self.file.with(|h| {
            let ds = h.dataset(&self.dataset).map_err(|e| self.fail(e))?;
            if self.shape.is_empty() {
                return ds.read_dyn::<T>().map_err(|e| self.fail(e));
            }
            ds.read_slice::<T, _, IxDyn>(selection(region))
                .map_err(|e| self.fail(e))
        })
    }

    fn fail(&self, e: impl std::fmt::Display) -> blockarray::Error {
        io_err(self.file.path(), &self.dataset, format!("read failed: {e}"))
    }

    /// Read `region` chunk by chunk, bypassing the library's filter pipeline: with `stages`
    /// (a filtered dataset) the raw bytes are decoded here; without (an unfiltered one, see
    /// `raw`) the chunks are read straight into their values, and only when the file allows
    /// reads without the lock (otherwise the library reads the region).
    fn direct_read(&self, region: &[Range<usize>], stages: Option<&[Stage]>) -> Result<ArrayD<T>> {
        let chunk = self.chunk.as_deref().expect("direct reads need chunks");
        let out_shape: Vec<usize> = region.iter().map(Range::len).collect();
        // The stored chunks overlapping the region, as their first elements.
        let grid: Vec<Range<usize>> = region
            .iter()
            .zip(chunk)
            .map(|(r, &c)| r.start / c..r.end.div_ceil(c))
            .collect();
        let offsets = grid_offsets(&grid, chunk);
        let chunk_bytes = chunk.iter().product::<usize>() * T::itemsize();
        let max_stored = chunk_bytes.saturating_mul(2).saturating_add(1 << 16);
        let chunk_elems = chunk_bytes / T::itemsize();
        // Under the lock: where the chunks are, and (for a file open read-only through the
        // POSIX driver) a descriptor to read them with after the lock is released, so that
        // reads from several workers overlap and the disk always has one in flight; otherwise
        // the raw bytes themselves, read by the library.
        let located = self.file.with(|h| {
            let ds = h.dataset(&self.dataset).map_err(|e| self.fail(e))?;
            if let Some(reader) = direct::lock_free_reader(h) {
                let at = offsets
                    .iter()
                    .map(|o| direct::locate_chunk(&ds, o, max_stored).map_err(|e| self.fail(e)))
                    .collect::<Result<Vec<_>>>()?;
                return Ok(Located::At(reader, at));
            }
            if stages.is_none() {
                return Ok(Located::Library);
            }
            offsets
                .iter()
                .map(|o| direct::read_raw_chunk(&ds, o, max_stored).map_err(|e| self.fail(e)))
                .collect::<Result<Vec<_>>>()
                .map(Located::Read)
        })?;
        let decode = |o: &[usize], mask: u32, bytes: Vec<u8>| {
            direct::decode_chunk::<T>(bytes, stages.unwrap_or(&[]), mask, chunk_elems)
                .map_err(|e| self.fail(format!("chunk at {o:?}: {e}")))
        };
        let chunks: Vec<Option<Vec<T>>> = match located {
            Located::Library => return self.library_read(region),
            Located::Read(raws) => raws
                .into_iter()
                .zip(&offsets)
                .map(|(raw, o)| raw.map(|(mask, bytes)| decode(o, mask, bytes)).transpose())
                .collect::<Result<_>>()?,
            Located::At(file, at) => at
                .into_iter()
                .zip(&offsets)
                .map(|(loc, o)| {
                    let Some((mask, addr, size)) = loc else {
                        return Ok(None);
                    };
                    let fail = |e: String| self.fail(format!("chunk at {o:?}: {e}"));
                    if stages.is_none() && mask == 0 {
                        direct::pread_values::<T>(&file, addr, size, chunk_elems)
                            .map(Some)
                            .map_err(fail)
                    } else {
                        let bytes = direct::pread_chunk(&file, addr, size).map_err(fail)?;
                        decode(o, mask, bytes).map(Some)
                    }
                })
                .collect::<Result<_>>()?,
        };
        let mut out: Option<ArrayD<T>> = None;
        for (offset, values_of_chunk) in offsets.iter().zip(chunks) {
            // The part of this chunk inside the region, in chunk and in output coordinates.
            let inter: Vec<Range<usize>> = offset
                .iter()
                .zip(chunk)
                .zip(region)
                .map(|((&o, &c), r)| o.max(r.start)..(o + c).min(r.end))
                .collect();
            let values;
            let piece: CowArray<'_, T, IxDyn> = match values_of_chunk {
                Some(v) => {
                    let decoded =
                        ArrayD::from_shape_vec(IxDyn(chunk), v).map_err(|e| self.fail(e))?;
                    if inter.iter().zip(chunk).all(|(i, &c)| i.len() == c) {
                        // The whole chunk lies in the region: move it, no copy.
                        decoded.into()
                    } else {
                        values = decoded;
                        let src: Vec<SliceInfoElem> = inter
                            .iter()
                            .zip(offset)
                            .map(|(i, &o)| (i.start - o..i.end - o).into())
                            .collect();
                        values.slice(src.as_slice()).into()
                    }
                }
                // Never written: the library supplies the fill value.
                None => self.library_read(&inter)?.into(),
            };
            if offsets.len() == 1 {
                // The usual case (blocks follow the stored chunks): no second buffer.
                return Ok(piece.into_owned());
            }
            let dst: Vec<SliceInfoElem> = inter
                .iter()
                .zip(region)
                .map(|(i, r)| (i.start - r.start..i.end - r.start).into())
                .collect();
            out.get_or_insert_with(|| ArrayD::from_elem(IxDyn(&out_shape), T::default()))
                .slice_mut(dst.as_slice())
                .assign(&piece);
        }
        Ok(out.unwrap_or_else(|| ArrayD::from_elem(IxDyn(&out_shape), T::default())))
    }
}

/// The first elements of the chunks in `grid` (chunk-index ranges per axis), in C order.
pub(crate) fn grid_offsets(grid: &[Range<usize>], chunk: &[usize]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    if grid.iter().any(|r| r.is_empty()) {
        return out;
    }
    let mut idx: Vec<usize> = grid.iter().map(|r| r.start).collect();
    loop {
        out.push(idx.iter().zip(chunk).map(|(&i, &c)| i * c).collect());
        let mut k = idx.len();
        loop {
            if k == 0 {
                return out;
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

/// An HDF5 selection of `region`.
pub(crate) fn selection(region: &[Range<usize>]) -> Selection {
    Selection::from(Hyperslab::from(
        region
            .iter()
            .map(|r| SliceOrIndex::from(r.clone()))
            .collect::<Vec<_>>(),
    ))
}

/// Check that the dataset holds `T`; returns whether its file type is exactly the native
/// memory type (so raw chunk bytes can be decoded directly) and the file type's name.
pub(crate) fn check_type<T: Hdf5Element>(
    ds: &hdf5::Dataset,
    path: &Path,
    name: &str,
) -> Result<(bool, String)> {
    let dtype = ds
        .dtype()
        .map_err(|e| io_err(path, name, format!("cannot read the element type: {e}")))?;
    let file_type = file::type_name(&dtype);
    let want = T::type_descriptor();
    let same = dtype.to_descriptor().is_ok_and(|d| d == want);
    if !same {
        return Err(err(
            ErrorKind::Type,
            path,
            name,
            format!(
                "the dataset holds {file_type}, not {} (open it as that type, or convert with astype after reading)",
                T::DTYPE
            ),
        ));
    }
    let native = hdf5::Datatype::from_type::<T>().is_ok_and(|m| m == dtype);
    Ok((native, file_type))
}

impl<T: Hdf5Element> ChunkSource<T> for Hdf5Source<T> {
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    fn read(&self, region: &[Range<usize>]) -> Result<ArrayD<T>> {
        if region.len() != self.shape.len()
            || region
                .iter()
                .zip(&self.shape)
                .any(|(r, &n)| r.start > r.end || r.end > n)
        {
            return Err(io_err(
                self.file.path(),
                &self.dataset,
                format!("region {region:?} is outside the shape {:?}", self.shape),
            ));
        }
        if region.iter().any(|r| r.is_empty()) {
            let shape: Vec<usize> = region.iter().map(Range::len).collect();
            return Ok(ArrayD::from_elem(IxDyn(&shape), T::default()));
        }
        match (&self.stages, self.io) {
            (Some(stages), ChunkIo::Auto) => self.direct_read(region, Some(stages)),
            (None, ChunkIo::Auto) if self.raw => self.direct_read(region, None),
            _ => self.library_read(region),
        }
    }

    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_u64(self.token);
    }

    fn name(&self) -> &str {
        "hdf5"
    }

    fn natural_chunks(&self) -> Option<Vec<usize>> {
        self.chunk.clone()
    }

    /// The dataset's HDF5 object (the same string an in-place [`Hdf5Sink`](crate::Hdf5Sink)
    /// into it reports, however the file or dataset path is spelled, through links too).
    fn resource(&self) -> Option<String> {
        Some(file::resource(&self.file, &self.dataset))
    }
}

/// `dataset` in `file` as a lazy array, in the dataset's own chunks.
///
/// Nothing is read now but the metadata; each block is read inside the task that needs it,
/// so slicing the array reads only the chunks the slice touches.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ba-hdf5-doc-read-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("data.h5");
/// use blockarray::{BlockArray, s};
/// use blockarray_hdf5::{from_hdf5, to_hdf5};
///
/// let x = BlockArray::<f64>::from_fn(&[1000, 800], [250, 200], "i+j", |i| (i[0] + i[1]) as f64)?;
/// to_hdf5(&path, &[("/x", &x)])?;
///
/// let y: BlockArray<f64> = from_hdf5(&path, "/x")?;
/// assert_eq!(y.chunks().max_block_shape(), [250, 200]); // the file's chunks
/// let corner = y.slice(s![..2, ..3])?.compute()?;         // reads one chunk
/// assert_eq!(corner.into_raw_vec_and_offset().0, [0.0, 1.0, 2.0, 1.0, 2.0, 3.0]);
/// assert_eq!(y.sum(None, false)?.compute()?.into_iter().next(), Some(719_200_000.0));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn from_hdf5<T: Hdf5Element>(path: impl AsRef<Path>, dataset: &str) -> Result<BlockArray<T>> {
    from_hdf5_with(path, dataset, &ReadOptions::default())
}

/// [`from_hdf5`] with options (chunks, chunk I/O path).
pub fn from_hdf5_with<T: Hdf5Element>(
    path: impl AsRef<Path>,
    dataset: &str,
    options: &ReadOptions,
) -> Result<BlockArray<T>> {
    let path = path.as_ref();
    let source = Hdf5Source::<T>::open(path, dataset, options.io)?;
    let name = source.dataset.clone();
    let file = source.file.path().to_path_buf();
    BlockArray::from_source(Arc::new(source), options.chunks.clone())
        .map_err(|e| e.context(format!("HDF5 file {}, dataset \"{name}\"", file.display())))
}

/// The files matching a glob pattern (`data/day-*.h5`), sorted by path; an error if the
/// pattern is malformed or matches nothing ([`blockarray::glob_paths`]).
pub fn glob_files(pattern: &str) -> Result<Vec<PathBuf>> {
    blockarray::glob_paths(pattern, "file")
}

/// Open `dataset` in every one of `files` and join the arrays along `axis`: stacked on a new
/// axis (`stack`) or concatenated along an existing one, shapes checked by
/// [`blockarray::join_paths`] (which names the file that does not fit).
fn join_files<T: Hdf5Element, P: AsRef<Path>>(
    files: &[P],
    dataset: &str,
    options: &ReadOptions,
    axis: usize,
    stack: bool,
) -> Result<BlockArray<T>> {
    blockarray::join_paths(
        &format!("dataset \"{dataset}\""),
        "HDF5 file",
        files,
        |p| from_hdf5_with(p, dataset, options),
        axis,
        stack,
    )
}

/// The same dataset from many files stacked along a new axis `axis` (like
/// `da.stack([da.from_array(h5py.File(f)[name]) for f in files])`). All must have the same
/// shape and type; each file's blocks stay lazy.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ba-hdf5-doc-stack-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use blockarray::BlockArray;
/// use blockarray_hdf5::{ReadOptions, glob_files, stack_hdf5, to_hdf5};
///
/// for day in 0..3 {
///     let t = BlockArray::<f32>::full(&[4, 5], day as f32, [2, 5])?;
///     to_hdf5(dir.join(format!("day-{day}.h5")), &[("/temperature", &t)])?;
/// }
/// let files = glob_files(&format!("{}/day-*.h5", dir.display()))?;
/// let all = stack_hdf5::<f32, _>(&files, "/temperature", 0, &ReadOptions::new())?;
/// assert_eq!(all.shape(), [3, 4, 5]);
/// let mean = all.mean(Some(&[0]), false)?.compute()?;
/// assert!(mean.iter().all(|&v| v == 1.0));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn stack_hdf5<T: Hdf5Element, P: AsRef<Path>>(
    files: &[P],
    dataset: &str,
    axis: usize,
    options: &ReadOptions,
) -> Result<BlockArray<T>> {
    join_files(files, dataset, options, axis, true)
}

/// The same dataset from many files joined along the existing axis `axis` (shapes must agree
/// on every other axis).
pub fn concatenate_hdf5<T: Hdf5Element, P: AsRef<Path>>(
    files: &[P],
    dataset: &str,
    axis: usize,
    options: &ReadOptions,
) -> Result<BlockArray<T>> {
    join_files(files, dataset, options, axis, false)
}

/// The raw chunks of a direct read: read by the library under the lock, or located under it
/// and read after it through a descriptor, at the chunks' addresses.
enum Located {
    /// The library reads the region (unfiltered data in a file without lock-free reads).
    Library,
    Read(Vec<Option<(u32, Vec<u8>)>>),
    At(std::fs::File, Vec<Option<(u32, u64, usize)>>),
}
