//! Writing: sinks into datasets, and many arrays stored into one file in one computation.

use crate::direct::{self, Stage};
use crate::element::Hdf5Element;
use crate::file::{self, Access, OpenFile, Target, err, io_err};
use crate::read::{ChunkIo, check_type, grid_offsets, selection};
use blockarray::{
    BlockArray, ChunkSink, ChunkSpec, Chunks, Computation, Error, ErrorKind, Result, Results,
};
use dag_core::{Callbacks, RunStats, Scheduler};
use hdf5::filters::Filter;
use ndarray::{ArrayD, IxDyn, SliceInfoElem};
use std::marker::PhantomData;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The largest chunk HDF5 accepts is 4 GiB; stay well below.
const MAX_CHUNK_BYTES: usize = 1 << 31;

/// Bytes of a default dataset chunk when neither the options nor an array's blocks say.
const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// How datasets are created: chunk shape, compression, replacement.
///
/// ```
/// use blockarray_hdf5::DatasetOptions;
/// let o = DatasetOptions::new().chunks([256, 256]).deflate(4).shuffle(true);
/// assert_eq!(o.chunk_shape(), Some(&[256, 256][..]));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatasetOptions {
    chunks: Option<Vec<usize>>,
    deflate: Option<u8>,
    shuffle: bool,
    overwrite: bool,
    io: ChunkIo,
}

impl DatasetOptions {
    /// No compression, chunks following the stored array's blocks, no overwriting,
    /// [`ChunkIo::Auto`].
    pub fn new() -> DatasetOptions {
        DatasetOptions::default()
    }

    /// The dataset's chunk shape (one entry per axis, each ≥ 1; entries larger than the axis
    /// are clamped). By default the stored array's block shape (so each block is written as
    /// whole chunks), or about 1 MiB chunks for a bare [`Hdf5Sink::create`].
    #[must_use]
    pub fn chunks(mut self, shape: impl Into<Vec<usize>>) -> DatasetOptions {
        self.chunks = Some(shape.into());
        self
    }

    /// Compress with deflate (zlib) at `level` (0–9).
    #[must_use]
    pub fn deflate(mut self, level: u8) -> DatasetOptions {
        self.deflate = Some(level);
        self
    }

    /// Apply HDF5's byte shuffle before compressing (helps deflate on numeric data).
    #[must_use]
    pub fn shuffle(mut self, on: bool) -> DatasetOptions {
        self.shuffle = on;
        self
    }

    /// Replace a dataset of the same name (when the store succeeds; a failed store leaves it
    /// as it was). Without it, an existing dataset is an error.
    #[must_use]
    pub fn overwrite(mut self, on: bool) -> DatasetOptions {
        self.overwrite = on;
        self
    }

    /// How chunks are written (see [`ChunkIo`]).
    #[must_use]
    pub fn io(mut self, io: ChunkIo) -> DatasetOptions {
        self.io = io;
        self
    }

    /// The chunk shape asked for, if any.
    pub fn chunk_shape(&self) -> Option<&[usize]> {
        self.chunks.as_deref()
    }
}

/// The chunk shape to create: `wanted` clamped to the shape, each axis ≥ 1, under 2 GiB.
/// `None` when the dataset cannot be chunked (a scalar or an empty axis).
fn clamp_chunk(shape: &[usize], wanted: &[usize], itemsize: usize) -> Option<Vec<usize>> {
    if shape.is_empty() || shape.contains(&0) {
        return None;
    }
    let mut c: Vec<usize> = wanted
        .iter()
        .zip(shape)
        .map(|(&w, &n)| w.clamp(1, n))
        .collect();
    while blockarray::shape_bytes(&c, itemsize) > MAX_CHUNK_BYTES {
        let k = (0..c.len()).max_by_key(|&k| c[k]).expect("ndim > 0");
        c[k] = c[k].div_ceil(2);
    }
    Some(c)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A hidden name beside `target` (`/g/.x.blockarray-<what>-<pid>-<n>` for `/g/x`), unique in
/// this process.
fn hidden_name(target: &str, what: &str) -> String {
    let (parent, leaf) = target
        .rsplit_once('/')
        .expect("normalised paths start with /");
    format!(
        "{parent}/.{leaf}.blockarray-{what}-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Where a sink is in the commit protocol of [`ChunkSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum SinkState {
    /// Blocks may be written.
    Open,
    /// Checked and flushed: committing can only fail if the file changes meanwhile.
    Prepared,
    /// The dataset is under its name; a dataset it replaced is kept under `backup` until
    /// [`ChunkSink::finish`] (or put back by [`ChunkSink::rollback`]).
    Committed { backup: Option<String> },
    /// Committed for good.
    Finished,
    /// The written data was deleted (or, in place, abandoned).
    Discarded,
}

/// A [`ChunkSink`] writing blocks into an HDF5 dataset.
///
/// Two kinds:
///
/// - [`Hdf5Sink::create`] makes a new dataset **under a hidden temporary name** beside the
///   real one. Blocks go there, and a [`Computation`](blockarray::Computation) (and so
///   [`Hdf5Store`], [`to_hdf5`] and `BlockArray::store`) commits it only when the whole run
///   succeeded, together with the run's other sinks, through the protocol of [`ChunkSink`]:
///   [`prepare`](ChunkSink::prepare) checks that the name is still free (or holds a dataset
///   to overwrite) and flushes; [`commit`](ChunkSink::commit) moves a dataset being
///   overwritten aside under a hidden backup name and renames the temporary into place;
///   [`finish`](ChunkSink::finish) deletes the backup; [`rollback`](ChunkSink::rollback)
///   (another sink of the run failed to commit) puts the backup back and deletes the new
///   data; [`abort`](ChunkSink::abort) (the run failed) deletes the temporary.
///
///   **What a failure leaves**: nothing visible. No new dataset appears, a dataset being
///   overwritten keeps its old values, the groups created for the dataset are removed again,
///   and a file the sink created is removed (when no other store is pending into it and
///   nothing else was committed into it). Only a crash of the process part way can leave
///   hidden temporaries (`.name.blockarray-tmp-…`) or, during the commit itself, the old
///   dataset under its hidden backup name (`.name.blockarray-old-…`); HDF5 does not return
///   the space of deleted datasets to the file.
/// - [`Hdf5Sink::open`] writes **in place** into an existing dataset (like h5py's
///   `dset[...] = x`). **What a failure leaves**: the dataset partly written — each block
///   either its old values or its new ones — and nothing can roll it back (nor can it be
///   rolled back when another sink of the run fails to commit). To replace a dataset all at
///   once or not at all, write a new dataset with [`DatasetOptions::overwrite`] instead. A
///   computation refuses an in-place store into a dataset it reads itself (writing `x[::-1]`
///   over `x` would read back blocks already overwritten), before writing anything
///   ([`ChunkSink::writes_in_place`], which names the dataset's HDF5 object, so another
///   spelling of the file, a link to the dataset, or a member of [`stack_hdf5`] is caught
///   too).
///
/// Blocks may arrive from many threads at once; each HDF5 call runs under the process-wide
/// lock, and with [`ChunkIo::Auto`] on a deflate/shuffle dataset, blocks covering whole
/// chunks are compressed before taking the lock and stored with `H5Dwrite_chunk`.
///
/// [`stack_hdf5`]: crate::stack_hdf5
pub struct Hdf5Sink<T> {
    file: Arc<OpenFile>,
    /// The dataset's real name.
    target: String,
    /// Where the data goes until commit (the target itself for in-place sinks).
    write_name: String,
    temporary: bool,
    overwrite: bool,
    shape: Vec<usize>,
    chunk: Option<Vec<usize>>,
    stages: Option<Vec<Stage>>,
    /// What the part of an edge chunk past the dataset's end is written with: the
    /// dataset's fill value, as the library writes it (zero for new datasets).
    fill: T,
    io: ChunkIo,
    state: Mutex<SinkState>,
    /// Set before the first write into the file (what a failed in-place store reports).
    touched: Arc<AtomicBool>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Hdf5Element> Hdf5Sink<T> {
    /// A new dataset of `shape` at `dataset` in `file` (created if missing), written under a
    /// temporary name until committed (see the type's documentation for what a failure
    /// leaves).
    ///
    /// Errors (naming file and dataset): the file exists but is not HDF5, or cannot be opened
    /// for writing; the path is a group or crosses a dataset; a dataset of that name exists
    /// and `options` does not say [`overwrite`](DatasetOptions::overwrite); invalid options
    /// (a chunk shape of the wrong rank or with a zero, a deflate level above 9, compression
    /// of an unchunkable dataset).
    pub fn create(
        path: impl AsRef<Path>,
        dataset: &str,
        shape: &[usize],
        options: &DatasetOptions,
    ) -> Result<Hdf5Sink<T>> {
        let path = path.as_ref();
        let name = file::normalize_dataset_path(path, dataset)?;
        if let Some(level) = options.deflate
            && level > 9
        {
            return Err(err(
                ErrorKind::Unsupported,
                path,
                &name,
                format!("deflate level {level} is not in 0–9"),
            ));
        }
        let wanted = match &options.chunks {
            Some(c) => {
                if c.len() != shape.len() || c.contains(&0) {
                    return Err(err(
                        ErrorKind::Chunks,
                        path,
                        &name,
                        format!(
                            "chunk shape {c:?} does not fit a dataset of shape {shape:?} (one entry ≥ 1 per axis)"
                        ),
                    ));
                }
                c.clone()
            }
            None if shape.is_empty() || shape.contains(&0) => Vec::new(),
            None => Chunks::new(
                shape,
                ChunkSpec::auto_bytes(DEFAULT_CHUNK_BYTES),
                T::itemsize(),
            )?
            .max_block_shape(),
        };
        let chunk = clamp_chunk(shape, &wanted, T::itemsize());
        if chunk.is_none() && (options.deflate.is_some() || options.shuffle) {
            return Err(err(
                ErrorKind::Unsupported,
                path,
                &name,
                format!(
                    "a dataset of shape {shape:?} cannot be chunked, so it cannot be compressed"
                ),
            ));
        }
        let mut filters = Vec::new();
        if options.shuffle {
            filters.push(Filter::Shuffle);
        }
        if let Some(level) = options.deflate {
            filters.push(Filter::Deflate(level));
        }
        // From here on the sink counts as pending on the file (until `sink_ended`), so that a
        // failure, here or of the run, removes the file if it created it and nothing else is
        // in it, but not while another sink may still commit into it.
        let f = file::open_file(path, Access::Create, &name)?;
        let temp = hidden_name(&name, "tmp");
        let created = f.with(|h| {
            match file::target(h, &name)? {
                (Target::Group, _) => {
                    return Err(io_err(f.path(), &name, "is a group, not a dataset"));
                }
                (Target::Other, _) => {
                    return Err(io_err(f.path(), &name, "exists and is not a dataset"));
                }
                (Target::Dataset, _) if !options.overwrite => {
                    return Err(io_err(
                        f.path(),
                        &name,
                        "already exists (use DatasetOptions::overwrite(true) to replace it)",
                    ));
                }
                (Target::Missing, Some(blocker)) => {
                    return Err(io_err(
                        f.path(),
                        &name,
                        format!("cannot be created: \"{blocker}\" is not a group"),
                    ));
                }
                _ => {}
            }
            // Intermediate groups, recorded on the file so that whichever sink leaves one
            // empty when discarded removes it.
            let (parent, _) = name.rsplit_once('/').expect("normalised");
            let mut prefix = String::new();
            for part in parent.split('/').filter(|p| !p.is_empty()) {
                prefix.push('/');
                prefix.push_str(part);
                if !h.link_exists(&prefix) {
                    h.create_group(&prefix).map_err(|e| {
                        io_err(
                            f.path(),
                            &name,
                            format!("cannot create group \"{prefix}\": {e}"),
                        )
                    })?;
                    f.group_created(&prefix);
                }
            }
            let mut builder = h.new_dataset::<T>().set_filters(&filters);
            builder = match &chunk {
                Some(c) => builder.chunk(c.clone()),
                None => builder.no_chunk(),
            };
            builder
                .shape(shape.to_vec())
                .create(temp.as_str())
                .map(drop)
                .map_err(|e| io_err(f.path(), &name, format!("cannot create the dataset: {e}")))
        });
        if let Err(e) = created {
            let _ = f.with(|h| {
                f.remove_empty_groups(h, &name);
                Ok(())
            });
            f.sink_ended(false);
            return Err(e);
        }
        let stages = chunk
            .as_ref()
            .and_then(|_| direct::pipeline(&filters, T::itemsize()));
        Ok(Hdf5Sink {
            file: f,
            target: name,
            write_name: temp,
            temporary: true,
            overwrite: options.overwrite,
            shape: shape.to_vec(),
            chunk,
            stages,
            fill: T::default(),
            io: options.io,
            state: Mutex::new(SinkState::Open),
            touched: Arc::default(),
            _type: PhantomData,
        })
    }

    /// The existing dataset `dataset` in `file`, written in place. Checks that it holds `T`.
    ///
    /// A failed run leaves the dataset partly written (see the type's documentation); a
    /// computation that reads the dataset itself refuses to store into it.
    pub fn open(path: impl AsRef<Path>, dataset: &str) -> Result<Hdf5Sink<T>> {
        let path = path.as_ref();
        let name = file::normalize_dataset_path(path, dataset)?;
        let f = file::open_file(path, Access::Write, &name)?;
        let (shape, chunk, stages, fill) = f.with(|h| {
            let ds = file::open_dataset(h, f.path(), &name)?;
            let (native, _) = check_type::<T>(&ds, f.path(), &name)?;
            let chunk = if ds.is_chunked() { ds.chunk() } else { None };
            let stages = native
                .then(|| direct::chunk_filters(&ds))
                .flatten()
                .and_then(|f| direct::pipeline(&f, T::itemsize()));
            // Chunks written directly are padded with the fill value, which a resize
            // would otherwise reveal as zeros (direct writes are only taken for native types,
            // so the value converts exactly).
            let fill = if stages.is_some() {
                ds.dcpl()
                    .ok()
                    .and_then(|p| p.fill_value_as::<T>())
                    .unwrap_or_default()
            } else {
                T::default()
            };
            Ok((ds.shape(), chunk, stages, fill))
        })?;
        Ok(Hdf5Sink {
            file: f,
            target: name.clone(),
            write_name: name,
            temporary: false,
            overwrite: false,
            shape,
            chunk,
            stages,
            fill,
            io: ChunkIo::Auto,
            state: Mutex::new(SinkState::Open),
            touched: Arc::default(),
            _type: PhantomData,
        })
    }

    /// The same sink with chunk I/O `io` (see [`ChunkIo`]).
    #[must_use]
    pub fn with_io(mut self, io: ChunkIo) -> Hdf5Sink<T> {
        self.io = io;
        self
    }

    /// The file (absolute path).
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The dataset's (final) path in the file.
    pub fn dataset(&self) -> &str {
        &self.target
    }

    /// Whether blocks go to a temporary dataset that committing renames (a sink from
    /// [`create`](Self::create)); `false` for in-place sinks.
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// The dataset's chunk shape, if chunked.
    pub fn chunk_shape(&self) -> Option<&[usize]> {
        self.chunk.as_deref()
    }

    /// An error naming the file and dataset unless an array of `shape` fits exactly.
    pub fn check_shape(&self, shape: &[usize]) -> Result<()> {
        if shape != self.shape.as_slice() {
            return Err(err(
                ErrorKind::Shape,
                self.file.path(),
                &self.target,
                format!(
                    "the dataset has shape {:?} but the array stored into it has shape {shape:?}",
                    self.shape
                ),
            ));
        }
        Ok(())
    }

    /// Commit in one step, for a sink filled outside a [`Computation`] (a computation runs
    /// the phases itself, together with its other sinks): prepare, commit and finish, so
    /// the dataset gets its real name (replacing an older one when overwriting, which is then
    /// deleted) and the file is flushed. Fails, changing nothing, if the name was taken
    /// meanwhile (without overwrite) or the data was discarded. For an in-place sink it only
    /// flushes; a no-op for a sink already committed.
    pub fn commit(&self) -> Result<()> {
        let mut state = self.lock_state();
        if *state == SinkState::Finished {
            return Ok(());
        }
        self.commit_locked(&mut state)?;
        self.finish_locked(&mut state);
        Ok(())
    }

    /// Delete the written data (the temporary dataset, and the groups made for it if now
    /// empty; the file too if this sink created it and nothing else is in it); later writes
    /// fail. A sink committed but not finished is rolled back (a replaced dataset comes
    /// back). A no-op for in-place sinks (their writes cannot be undone) and for sinks
    /// committed for good.
    pub fn discard(&self) -> Result<()> {
        let mut state = self.lock_state();
        match *state {
            SinkState::Committed { .. } => {
                self.rollback_locked(&mut state);
                Ok(())
            }
            _ => self.discard_locked(&mut state),
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An I/O error about this sink's dataset.
    fn error(&self, msg: impl std::fmt::Display) -> Error {
        io_err(self.file.path(), &self.target, msg)
    }

    fn flush(&self, h: &hdf5::File) -> Result<()> {
        h.flush()
            .map_err(|e| self.error(format!("flushing the file failed: {e}")))
    }

    /// Phase 1: check everything committing needs, and flush the written data.
    fn prepare_locked(&self, state: &mut SinkState) -> Result<()> {
        match state {
            SinkState::Open => {}
            SinkState::Prepared | SinkState::Committed { .. } | SinkState::Finished => {
                return Ok(());
            }
            SinkState::Discarded => {
                return Err(self.error("cannot commit: the written data was discarded"));
            }
        }
        self.file.with(|h| {
            if self.temporary {
                if !h.link_exists(&self.write_name) {
                    return Err(self.error(format!(
                        "cannot commit: the temporary dataset \"{}\" it was written to is gone",
                        self.write_name
                    )));
                }
                self.check_target(h)?;
            }
            self.flush(h)
        })?;
        *state = SinkState::Prepared;
        Ok(())
    }

    /// Whether the target name can take the new dataset now: `Ok(true)` when a dataset is
    /// there to be replaced, `Ok(false)` when the name is free, an error naming what is in
    /// the way otherwise.
    fn check_target(&self, h: &hdf5::File) -> Result<bool> {
        match file::target(h, &self.target)? {
            (Target::Missing, None) => Ok(false),
            (Target::Dataset, _) if self.overwrite => Ok(true),
            (Target::Dataset, _) => Err(self.error(
                "already exists: it was created after this store began (use \
                 DatasetOptions::overwrite(true) to replace it)",
            )),
            (Target::Group, _) => Err(self.error(
                "cannot be committed: the name is now a group (created after this store began)",
            )),
            (Target::Other, _) => Err(self.error(
                "cannot be committed: the name is now taken by something that is not a dataset",
            )),
            (Target::Missing, Some(blocker)) => {
                Err(self.error(format!("cannot be committed: \"{blocker}\" is not a group")))
            }
        }
    }

    /// Phase 2: make the dataset visible under its name, keeping a replaced one aside.
    /// On failure the file is as it was before (the temporary still under its own name).
    fn commit_locked(&self, state: &mut SinkState) -> Result<()> {
        self.prepare_locked(state)?;
        if *state != SinkState::Prepared {
            return Ok(());
        }
        if !self.temporary {
            self.file.with(|h| self.flush(h))?;
            *state = SinkState::Committed { backup: None };
            return Ok(());
        }
        let backup = self.file.with(|h| {
            // Checked again: the file may have changed since prepare.
            let backup = if self.check_target(h)? {
                let backup = hidden_name(&self.target, "old");
                h.relink(&self.target, &backup).map_err(|e| {
                    self.error(format!(
                        "cannot move the old dataset aside to \"{backup}\": {e}"
                    ))
                })?;
                Some(backup)
            } else {
                None
            };
            let undo = |h: &hdf5::File| {
                if let Some(b) = &backup {
                    let _ = h.relink(b, &self.target);
                }
            };
            if let Err(e) = h.relink(&self.write_name, &self.target) {
                undo(h);
                return Err(self.error(format!("cannot rename \"{}\" to it: {e}", self.write_name)));
            }
            if let Err(e) = self.flush(h) {
                let _ = h.relink(&self.target, &self.write_name);
                undo(h);
                return Err(e);
            }
            Ok(backup)
        })?;
        *state = SinkState::Committed { backup };
        Ok(())
    }

    /// Phase 3: committed for good; delete a replaced dataset kept aside.
    fn finish_locked(&self, state: &mut SinkState) {
        let SinkState::Committed { backup } = &*state else {
            return;
        };
        if self.temporary {
            let _ = self.file.with(|h| {
                if let Some(b) = backup {
                    let _ = h.unlink(b);
                }
                self.file.groups_kept(&self.target);
                let _ = h.flush();
                Ok(())
            });
        }
        *state = SinkState::Finished;
        if self.temporary {
            self.file.sink_ended(true);
        }
    }

    /// Undo a commit (a later sink of the run failed to commit): the new dataset goes back to
    /// its temporary name, a replaced one back to its name, and then the data is discarded.
    fn rollback_locked(&self, state: &mut SinkState) {
        if let SinkState::Committed { backup } = &*state
            && self.temporary
        {
            let _ = self.file.with(|h| {
                let out = h
                    .relink(&self.target, &self.write_name)
                    .or_else(|_| h.unlink(&self.target));
                if let (Ok(()), Some(b)) = (out, backup) {
                    let _ = h.relink(b, &self.target);
                }
                Ok(())
            });
            *state = SinkState::Prepared;
        }
        let _ = self.discard_locked(state);
    }

    /// Delete the temporary (and the groups and file made for it, if nothing else is in
    /// them). In-place sinks only stop accepting writes.
    fn discard_locked(&self, state: &mut SinkState) -> Result<()> {
        match state {
            SinkState::Open | SinkState::Prepared => {}
            SinkState::Committed { .. } if !self.temporary => {}
            _ => return Ok(()),
        }
        *state = SinkState::Discarded;
        if !self.temporary {
            return Ok(());
        }
        let r = self.file.with(|h| {
            let r = h
                .unlink(&self.write_name)
                .map_err(|e| self.error(format!("cannot remove the temporary dataset: {e}")));
            self.file.remove_empty_groups(h, &self.target);
            let _ = h.flush();
            r
        });
        self.file.sink_ended(false);
        r
    }

    fn write_library(
        &self,
        ds: &hdf5::Dataset,
        region: &[Range<usize>],
        block: ndarray::ArrayViewD<'_, T>,
    ) -> Result<()> {
        let block = block.as_standard_layout();
        let r = if self.shape.is_empty() {
            ds.write(&block)
        } else {
            ds.write_slice(&block, selection(region))
        };
        r.map_err(|e| self.fail(e))
    }

    fn fail(&self, e: impl std::fmt::Display) -> Error {
        io_err(self.file.path(), &self.target, format!("write failed: {e}"))
    }
}

impl<T: Hdf5Element> ChunkSink<T> for Hdf5Sink<T> {
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    fn describe(&self) -> String {
        // The shape as blockarray's own messages print it: a Python tuple.
        let dims: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        let comma = if dims.len() == 1 { "," } else { "" };
        format!(
            "dataset {} of shape ({}{comma}) in {}",
            self.target,
            dims.join(", "),
            self.file.path().display()
        )
    }

    /// In a run over several processes, only the first writes files (the sinks' tasks are
    /// placed there): a sink built in another would commit a dataset of fill values.
    fn check_processes(&self, processes: usize, index: usize) -> Result<()> {
        if processes > 1 && index != 0 {
            return Err(err(
                ErrorKind::Unsupported,
                self.file.path(),
                &self.target,
                format!(
                    "an HDF5 sink was built in process {index} of a run over {processes}: \
                     only the first process writes the file (every block is sent there), so \
                     this one would commit a dataset of fill values; store with \
                     Hdf5Store::for_scheduler or to_hdf5_with, which build the sink in the \
                     first process only"
                ),
            ));
        }
        Ok(())
    }

    fn prepare(&self) -> Result<()> {
        self.prepare_locked(&mut self.lock_state())
    }

    fn commit(&self) -> Result<()> {
        self.commit_locked(&mut self.lock_state())
    }

    fn rollback(&self) {
        self.rollback_locked(&mut self.lock_state());
    }

    fn finish(&self) {
        self.finish_locked(&mut self.lock_state());
    }

    fn abort(&self) {
        // Called for sinks that did not commit; one that did is rolled back all the same.
        let _ = self.discard();
    }

    fn writes_in_place(&self) -> Option<String> {
        (!self.temporary).then(|| file::resource(&self.file, &self.target))
    }

    /// A dataset is written whole by one sink: a second sink into it in the same computation
    /// would replace the first's dataset when it commits (and the first's data would be
    /// lost), or write into one about to be replaced. Named by the file's canonical path and
    /// the dataset's normalised path, which exist whether the dataset does yet or not.
    fn rewrites_units_of(&self) -> Option<String> {
        Some(format!(
            "hdf5-dataset:{}:{}",
            self.file.path().display(),
            self.target
        ))
    }
    fn write_block(&self, offset: &[usize], block: &ArrayD<T>) -> Result<()> {
        if *self.state.lock().unwrap_or_else(|e| e.into_inner()) != SinkState::Open {
            return Err(self.fail("the sink was already committed or discarded"));
        }
        if offset.len() != self.shape.len()
            || block.ndim() != self.shape.len()
            || offset
                .iter()
                .zip(block.shape())
                .zip(&self.shape)
                .any(|((&o, &n), &len)| o.checked_add(n).is_none_or(|end| end > len))
        {
            return Err(err(
                ErrorKind::Shape,
                self.file.path(),
                &self.target,
                format!(
                    "a block of shape {:?} at {offset:?} does not fit the dataset's shape {:?}",
                    block.shape(),
                    self.shape
                ),
            ));
        }
        if block.is_empty() {
            return Ok(());
        }
        let region: Vec<Range<usize>> = offset
            .iter()
            .zip(block.shape())
            .map(|(&o, &n)| o..o + n)
            .collect();
        self.touched.store(true, Ordering::Relaxed);
        let (Some(stages), Some(chunk), ChunkIo::Auto) = (&self.stages, &self.chunk, self.io)
        else {
            return self.file.with(|h| {
                let ds = h.dataset(&self.write_name).map_err(|e| self.fail(e))?;
                self.write_library(&ds, &region, block.view())
            });
        };
        // Outside the lock: cut the block into the stored chunks it covers entirely, and
        // shuffle + deflate each. Chunks it covers only partly go through the library.
        let grid: Vec<Range<usize>> = region
            .iter()
            .zip(chunk)
            .map(|(r, &c)| r.start / c..r.end.div_ceil(c))
            .collect();
        let mut encoded: Vec<(Vec<usize>, Vec<u8>)> = Vec::new();
        let mut partial: Vec<Vec<Range<usize>>> = Vec::new();
        for origin in grid_offsets(&grid, chunk) {
            // The chunk's elements inside the dataset, and their intersection with the block.
            let inside: Vec<Range<usize>> = origin
                .iter()
                .zip(chunk)
                .zip(&self.shape)
                .map(|((&o, &c), &n)| o..(o + c).min(n))
                .collect();
            let covered = inside
                .iter()
                .zip(&region)
                .all(|(i, r)| r.start <= i.start && i.end <= r.end);
            if !covered {
                partial.push(
                    inside
                        .iter()
                        .zip(&region)
                        .map(|(i, r)| i.start.max(r.start)..i.end.min(r.end))
                        .collect(),
                );
                continue;
            }
            let src: Vec<SliceInfoElem> = inside
                .iter()
                .zip(&region)
                .map(|(i, r)| (i.start - r.start..i.end - r.start).into())
                .collect();
            let piece = block.slice(src.as_slice());
            let full = inside.iter().zip(chunk).all(|(i, &c)| i.len() == c);
            let mut bytes = Vec::new();
            if full {
                match piece.as_slice() {
                    Some(s) => T::encode(s, &mut bytes),
                    None => T::encode(&piece.iter().copied().collect::<Vec<_>>(), &mut bytes),
                }
            } else {
                // An edge chunk is stored at full size; pad with the fill value.
                let mut padded = ArrayD::from_elem(IxDyn(chunk), self.fill);
                let dst: Vec<SliceInfoElem> = inside.iter().map(|i| (0..i.len()).into()).collect();
                padded.slice_mut(dst.as_slice()).assign(&piece);
                T::encode(
                    padded.as_slice().expect("a new array is contiguous"),
                    &mut bytes,
                );
            }
            encoded.push((origin, direct::encode_stages(bytes, stages)));
        }
        // Under the lock: only the stores.
        self.file.with(|h| {
            let ds = h.dataset(&self.write_name).map_err(|e| self.fail(e))?;
            for (origin, bytes) in &encoded {
                direct::write_raw_chunk(&ds, origin, bytes).map_err(|e| self.fail(e))?;
            }
            for sub in &partial {
                let src: Vec<SliceInfoElem> = sub
                    .iter()
                    .zip(&region)
                    .map(|(s, r)| (s.start - r.start..s.end - r.start).into())
                    .collect();
                self.write_library(&ds, sub, block.slice(src.as_slice()))?;
            }
            Ok(())
        })
    }
}

impl<T> Drop for Hdf5Sink<T> {
    fn drop(&mut self) {
        // Nothing will commit or roll back a sink being dropped: delete its data unless it
        // was committed, and drop a replaced dataset kept aside if it was.
        let state = std::mem::replace(
            self.state.get_mut().unwrap_or_else(|e| e.into_inner()),
            SinkState::Discarded,
        );
        if !self.temporary {
            return;
        }
        let kept = match &state {
            SinkState::Open | SinkState::Prepared => false,
            SinkState::Committed { .. } => true,
            SinkState::Finished | SinkState::Discarded => return,
        };
        let _ = self.file.with(|h| {
            match &state {
                SinkState::Committed { backup } => {
                    if let Some(b) = backup {
                        let _ = h.unlink(b);
                    }
                    self.file.groups_kept(&self.target);
                }
                _ => {
                    let _ = h.unlink(&self.write_name);
                    self.file.remove_empty_groups(h, &self.target);
                }
            }
            let _ = h.flush();
            Ok(())
        });
        self.file.sink_ended(kept);
    }
}

/// Many arrays stored into one HDF5 file in **one** computation (dask's
/// `da.to_hdf5(file, {'/x': x, '/y': y})`): work the arrays share is done once, and the new
/// datasets appear under their names all together, only if the whole computation succeeded.
///
/// New datasets ([`dataset`](Self::dataset)) are created under hidden temporary names when
/// added, so a bad path or option is reported at once; [`run`](Self::run) computes and
/// stores everything, then commits every dataset in two phases (see [`Hdf5Sink`]): first
/// checks that every name can be taken, then renames the datasets into place, moving a
/// dataset being overwritten aside until all of them are in place.
///
/// **What a failure leaves** (a failed task, a name taken meanwhile, a failed rename, a
/// panic): the file as it was before the run. No new dataset, no leftover group, every
/// overwritten dataset with its old values; a file the store created is removed. Dropping
/// the store without running it does the same. The one exception is
/// [`existing`](Self::existing): an in-place write cannot be undone, so a failed run leaves
/// such a dataset **partly written** (each block old or new) and says so in its error. To
/// replace a dataset all at once or not at all, write it as a new dataset with
/// [`DatasetOptions::overwrite`]. An in-place store into a dataset the computation itself
/// reads is refused before anything is written.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ba-hdf5-doc-store-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("out.h5");
/// use blockarray_hdf5::{DatasetOptions, Hdf5Store, from_hdf5};
///
/// let x = blockarray::random::Rng::new(7).random::<f64>(&[2000, 500], [500, 500])?;
/// let centered = (&x - &x.mean(Some(&[0]), true)?)?;
/// let mut store = Hdf5Store::new(&path);
/// store
///     .dataset("/raw", &x, &DatasetOptions::new())?
///     .dataset("/centered", &centered, &DatasetOptions::new().deflate(1).shuffle(true))?;
/// // An in-memory result in the same run: x is generated once for all three.
/// let col_std = store.computation().add(&x.std(Some(&[0]), 0.0, false)?);
/// let mut results = store.run()?;
/// assert_eq!(results.take(col_std)?.len(), 500);
/// let back = from_hdf5::<f64>(&path, "/centered")?.mean(None, false)?.compute()?;
/// assert!(back.into_iter().next().unwrap().abs() < 1e-12);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Hdf5Store {
    path: PathBuf,
    /// The processes of the runs this store was built for (1 unless built for a
    /// distributed scheduler with [`Hdf5Store::for_scheduler`]).
    processes: usize,
    /// Whether this process opens the file: the first process of a distributed run (where
    /// the sinks' tasks run, `Placement::First`), or the only one. Other processes hold
    /// stand-ins that only know the datasets' shapes.
    writer: bool,
    computation: Computation,
    /// The datasets stored into so far (normalised paths).
    datasets: Vec<String>,
    /// Those of them written in place, and whether any block was written into each.
    in_place: Vec<(String, Arc<AtomicBool>)>,
    /// Whether [`run`](Hdf5Store::run) draws a progress bar.
    progress: bool,
    /// In a store over several processes, the first error adding a dataset that only this
    /// (the first) process could see: [`run_with`](Hdf5Store::run_with) returns it on every
    /// process.
    deferred: Option<Error>,
}

impl Hdf5Store {
    /// A store into `file` (created when the first dataset is added, if missing), for runs
    /// with the default scheduler ([`Hdf5Store::for_scheduler`] for another).
    pub fn new(path: impl AsRef<Path>) -> Hdf5Store {
        Hdf5Store::for_scheduler(path, &*blockarray::default_scheduler())
    }

    /// A store into `file` for runs with `scheduler`. With a scheduler that spreads a run
    /// over several processes (an MPI scheduler: every rank runs the same program), only the
    /// first process opens and writes the file: the blocks computed elsewhere are sent to it
    /// (its sinks' tasks are placed [`First`](dag_core::Placement::First)), and the other
    /// processes hold stand-ins. The commit is agreed between the processes: the datasets
    /// appear only if every process's share of the run succeeded.
    ///
    /// An error while adding a dataset that only the first process can see (a name taken in
    /// the file, a file that cannot be written) is then not returned by
    /// [`dataset`](Self::dataset) or [`existing`](Self::existing), which every process
    /// passes alike, but by [`run_with`](Self::run_with), on every process: no process
    /// returns early while the others wait for it in the run.
    pub fn for_scheduler(path: impl AsRef<Path>, scheduler: &dyn Scheduler) -> Hdf5Store {
        Hdf5Store {
            path: path.as_ref().to_path_buf(),
            processes: scheduler.processes(),
            writer: scheduler.process_index() == 0,
            computation: Computation::new(),
            datasets: Vec::new(),
            in_place: Vec::new(),
            progress: false,
            deferred: None,
        }
    }

    /// Draw a progress bar on stderr while [`run`](Self::run) writes (only when stderr is a
    /// terminal, so logs stay clean; off by default). [`run_with`](Self::run_with) takes any
    /// callbacks instead: a `ProgressBar`, a profiler, a dashboard.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("ba-hdf5-doc-progress-{}.h5", std::process::id()));
    /// let x = blockarray::BlockArray::<f64>::ones(&[1000, 1000], [250, 250])?;
    /// let mut store = blockarray_hdf5::Hdf5Store::new(&path);
    /// store.progress(true).dataset("/x", &x, &Default::default())?;
    /// store.run()?;
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn progress(&mut self, on: bool) -> &mut Hdf5Store {
        self.progress = on;
        self
    }

    /// Store `array` as a new dataset `dataset` created with `options` (chunks default to the
    /// array's block shape). A store writes each dataset once: naming it again (however the
    /// path is spelled) is an error. In a store over several processes, errors from the file
    /// itself are returned by [`run_with`](Self::run_with), on every process (see
    /// [`for_scheduler`](Self::for_scheduler)).
    pub fn dataset<T: Hdf5Element>(
        &mut self,
        dataset: &str,
        array: &BlockArray<T>,
        options: &DatasetOptions,
    ) -> Result<&mut Hdf5Store> {
        let mut options = options.clone();
        if options.chunks.is_none() {
            // An empty axis has blocks of length 0; HDF5 chunks are at least 1.
            let blocks = array.chunks().max_block_shape();
            options.chunks = Some(blocks.into_iter().map(|b| b.max(1)).collect());
        }
        if !self.writer {
            return self.stand_in(dataset, array);
        }
        self.unclaimed(&file::normalize_dataset_path(&self.path, dataset)?)?;
        let sink = match Hdf5Sink::<T>::create(&self.path, dataset, array.shape(), &options) {
            Ok(sink) => Arc::new(sink),
            Err(e) => return self.defer(e, dataset, array),
        };
        let name = sink.dataset().to_owned();
        self.computation
            .store(array, sink as Arc<dyn ChunkSink<T>>)?;
        self.claim(name);
        Ok(self)
    }

    /// On a process that does not open the file: a sink that only knows the shape (its
    /// tasks run in the first process).
    fn stand_in<T: Hdf5Element>(
        &mut self,
        dataset: &str,
        array: &BlockArray<T>,
    ) -> Result<&mut Hdf5Store> {
        let name = file::normalize_dataset_path(&self.path, dataset)?;
        self.unclaimed(&name)?;
        let sink = StandIn {
            shape: array.shape().to_vec(),
            what: format!(
                "dataset {name} in {} (written by the first process)",
                self.path.display()
            ),
        };
        self.computation
            .store(array, Arc::new(sink) as Arc<dyn ChunkSink<T>>)?;
        self.claim(name);
        Ok(self)
    }

    /// Store `array` into the existing dataset `dataset`, in place (see [`Hdf5Sink::open`]):
    /// its shape and element type must match. A failed run leaves it partly written; a run
    /// whose arrays read the dataset is refused (write a new dataset with
    /// [`DatasetOptions::overwrite`] for either). Errors from the file itself are deferred
    /// as [`dataset`](Self::dataset)'s are.
    pub fn existing<T: Hdf5Element>(
        &mut self,
        dataset: &str,
        array: &BlockArray<T>,
    ) -> Result<&mut Hdf5Store> {
        self.unclaimed(&file::normalize_dataset_path(&self.path, dataset)?)?;
        if !self.writer {
            return self.stand_in(dataset, array);
        }
        let sink = match Hdf5Sink::<T>::open(&self.path, dataset) {
            Ok(sink) => Arc::new(sink),
            Err(e) => return self.defer(e, dataset, array),
        };
        let (name, touched) = (sink.dataset().to_owned(), sink.touched.clone());
        self.computation
            .store(array, sink as Arc<dyn ChunkSink<T>>)?;
        self.in_place.push((name.clone(), touched));
        self.claim(name);
        Ok(self)
    }

    /// An error opening the file or the dataset, seen by this process only: returned now in
    /// a one-process store; in a store over several processes, kept for
    /// [`run_with`](Self::run_with) to return on every process (a stand-in takes the
    /// dataset's place, so this process goes on as the others do).
    fn defer<T: Hdf5Element>(
        &mut self,
        e: Error,
        dataset: &str,
        array: &BlockArray<T>,
    ) -> Result<&mut Hdf5Store> {
        if self.processes == 1 {
            return Err(e);
        }
        self.deferred.get_or_insert(e);
        self.stand_in(dataset, array)
    }

    /// Record that this store writes `dataset` (a normalised path, checked with
    /// [`unclaimed`](Self::unclaimed)), once its store was added: a store refused (unknown
    /// chunk sizes, say) leaves the name free for the call that fixes it.
    fn claim(&mut self, dataset: String) {
        self.datasets.push(dataset);
    }

    /// An error naming `dataset` if this store already writes it: both would compute, and one
    /// would be lost.
    fn unclaimed(&self, dataset: &str) -> Result<()> {
        if self.datasets.iter().any(|d| d == dataset) {
            return Err(err(
                ErrorKind::Index,
                &self.path,
                dataset,
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

    /// Run with the default scheduler (with a progress bar if [`progress`](Self::progress)
    /// asked for one), then commit every dataset.
    pub fn run(self) -> Result<Results> {
        let scheduler = blockarray::default_scheduler();
        if self.progress {
            Ok(self
                .run_with(&*scheduler, &blockarray::ProgressBar::new())?
                .0)
        } else {
            Ok(self.run_with(&*scheduler, &dag_core::NoCallbacks)?.0)
        }
    }

    /// Run with `scheduler` and `callbacks`, then commit every dataset; returns the run's
    /// statistics too. On failure the file is left as it was (see the type's documentation)
    /// but for datasets written in place, and the error names the file and what it left.
    pub fn run_with(
        self,
        scheduler: &dyn Scheduler,
        callbacks: &dyn Callbacks,
    ) -> Result<(Results, RunStats)> {
        if scheduler.processes() != self.processes {
            // The same on every process: none starts a run the others refuse.
            return Err(err(
                ErrorKind::Unsupported,
                &self.path,
                "/",
                format!(
                    "this store was built for runs over {} process(es) but is run over {} \
                     (build it with Hdf5Store::for_scheduler(path, &scheduler))",
                    self.processes,
                    scheduler.processes()
                ),
            ));
        }
        if self.processes > 1 {
            // Every process agrees here, whether or not it saw an error (a collective call).
            let local = self.deferred.clone().map_or(Ok(()), Err);
            let shared = scheduler.agree(local.as_ref().map_err(|e| e.to_string()).copied());
            if let Err(why) = shared {
                return Err(local
                    .err()
                    .unwrap_or_else(|| err(ErrorKind::Io, &self.path, "/", why)));
            }
        }
        // The computation commits every sink (renaming the datasets into place) when all
        // blocks were written, and aborts or rolls them back (deleting the new datasets,
        // putting overwritten ones back) otherwise.
        let result = self.computation.run_with(scheduler, callbacks);
        // The sinks are dropped with the computation: the first process has finished with the
        // file (closed it, unless arrays of this process read it). The others wait for that,
        // so none opens the file while it is still being written or locked.
        if self.processes > 1 {
            scheduler
                .agree(Ok(()))
                .map_err(|why| err(ErrorKind::Io, &self.path, "/", why))?;
        }
        result.map_err(|e| {
            let touched: Vec<&str> = self
                .in_place
                .iter()
                .filter(|(_, t)| t.load(Ordering::Relaxed))
                .map(|(d, _)| d.as_str())
                .collect();
            let in_place = if touched.is_empty() {
                String::new()
            } else {
                format!(
                    "; written in place, {} may be left partly written (each block old or new)",
                    touched.join(", ")
                )
            };
            e.context(format!(
                "storing into HDF5 file {} failed; no dataset was created or replaced{in_place}",
                self.path.display()
            ))
        })
    }
}

/// Store each `(dataset path, array)` into `file` in one computation with the default
/// scheduler (see [`Hdf5Store`]); datasets are created uncompressed, chunked like their
/// arrays.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ba-hdf5-doc-to-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("xy.h5");
/// use blockarray::BlockArray;
/// use blockarray_hdf5::{from_hdf5, to_hdf5};
///
/// let x = BlockArray::<f64>::ones(&[100, 100], [25, 50])?;
/// let y = (&x * 2.0).sum(Some(&[1]), false)?;
/// to_hdf5(&path, &[("/x", &x), ("/group/y", &y)])?;
/// assert_eq!(from_hdf5::<f64>(&path, "/group/y")?.compute()?[[3]], 200.0);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_hdf5<T: Hdf5Element>(
    path: impl AsRef<Path>,
    datasets: &[(&str, &BlockArray<T>)],
) -> Result<()> {
    to_hdf5_with(
        path,
        datasets,
        &DatasetOptions::default(),
        &*blockarray::default_scheduler(),
    )
}

/// [`to_hdf5`] with dataset options (applied to every dataset) and a scheduler.
pub fn to_hdf5_with<T: Hdf5Element>(
    path: impl AsRef<Path>,
    datasets: &[(&str, &BlockArray<T>)],
    options: &DatasetOptions,
    scheduler: &dyn Scheduler,
) -> Result<()> {
    let mut store = Hdf5Store::for_scheduler(path, scheduler);
    // (Errors only the first process sees are returned by the run, on every process.)
    for (name, array) in datasets {
        store.dataset(name, array, options)?;
    }
    store
        .run_with(scheduler, &dag_core::NoCallbacks)
        .map(|_| ())
}

/// What a process that does not open the file stores into: the shape, for checks; its
/// tasks never run here (they are placed on the first process, which holds the real sink).
struct StandIn {
    shape: Vec<usize>,
    what: String,
}

impl<T: Hdf5Element> ChunkSink<T> for StandIn {
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn write_block(&self, offset: &[usize], _block: &ArrayD<T>) -> Result<()> {
        Err(Error::io(format!(
            "{}: the block at {offset:?} reached a process that does not write the file (the \
             scheduler did not run the store on its first process)",
            self.what
        )))
    }
    fn describe(&self) -> String {
        self.what.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_names_stay_beside_the_target() {
        let temp = hidden_name("/g/x", "tmp");
        assert!(temp.starts_with("/g/.x.blockarray-tmp-"), "{temp}");
        assert_ne!(temp, hidden_name("/g/x", "tmp"));
        assert!(hidden_name("/x", "old").starts_with("/.x.blockarray-old-"));
    }

    /// Chunk shapes whose byte count overflows are halved like any other too large (the
    /// product overflowed: a panic in debug builds, a wrapped size in release).
    #[test]
    fn huge_wanted_chunks_are_clamped() {
        let n = 1usize << 32;
        let c = clamp_chunk(&[n, n], &[n, n], 8).expect("chunked");
        assert!(c.iter().product::<usize>() * 8 <= MAX_CHUNK_BYTES, "{c:?}");
        assert_eq!(clamp_chunk(&[4, 0], &[2, 2], 8), None);
    }
}
