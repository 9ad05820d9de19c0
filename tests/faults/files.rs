//! Files: corrupt, truncated and read-only files, sinks that fail part-way or are slow,
//! in-place stores into what the computation reads, multi-dataset stores whose commit fails,
//! and failed stores into files that did not exist.
//!
//! Each test asserts the error a user gets (naming the file and the dataset) and what the
//! file holds afterwards, compared with a [`snapshot`] of every link (hidden temporaries and
//! backups included) and every value: a failed store leaves the file exactly as it was (or no
//! file, when the store created it); in-place writes are the one documented exception.

use crate::common::schedulers;
use blockarray::{BlockArray, ChunkSink, ErrorKind, s};
use blockarray_hdf5::{
    DatasetOptions, Hdf5Sink, Hdf5Store, ReadOptions, concatenate_hdf5, from_hdf5, stack_hdf5,
    to_hdf5, to_hdf5_with, with_hdf5_lock,
};
use dag_core::Scheduler;
use ndarray::{ArrayD, IxDyn};
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique path in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!(
            "blockarray-faults-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempFile {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Everything a file holds: each link by full path (groups as `None`), each dataset's shape
/// and values (every dataset in these tests holds float64).
type Snapshot = BTreeMap<String, Option<(Vec<usize>, Vec<f64>)>>;

fn snapshot(path: &Path) -> Snapshot {
    with_hdf5_lock(|| {
        let f = hdf5::File::open(path).expect("the test file opens");
        let mut out = Snapshot::new();
        walk(&f, "", &mut out);
        out
    })
}

fn walk(g: &hdf5::Group, prefix: &str, out: &mut Snapshot) {
    for name in g.member_names().expect("members") {
        let full = format!("{prefix}/{name}");
        if let Ok(sub) = g.group(&name) {
            out.insert(full.clone(), None);
            walk(&sub, &full, out);
        } else {
            let ds = g.dataset(&name).expect("a dataset");
            let values = ds.read_raw::<f64>().expect("float64 values");
            out.insert(full, Some((ds.shape(), values)));
        }
    }
}

/// The values of dataset `name` in `path`, read through the crate.
fn read(path: &Path, name: &str) -> Vec<f64> {
    from_hdf5::<f64>(path, name)
        .expect("the dataset opens")
        .compute()
        .expect("the dataset reads")
        .into_iter()
        .collect()
}

/// `0, 1, …, n - 1` times `scale`, in blocks of `block`.
fn ramp(n: usize, block: usize, scale: f64) -> BlockArray<f64> {
    let a = ArrayD::from_shape_fn(IxDyn(&[n]), |i| i[0] as f64 * scale);
    BlockArray::from_array(a, [block]).expect("ramp")
}

/// `x` with block `bad` of 10 failing when computed.
fn failing_at(x: &BlockArray<f64>, bad: usize) -> BlockArray<f64> {
    x.map_blocks("fails-at-one-block", None, move |b, info| {
        if info.index == [bad] {
            Err(format!("simulated failure in block {bad}").into())
        } else {
            Ok(b.clone())
        }
    })
    .expect("map_blocks")
}

/// A file holding `/old` (0..40, chunks of 10) and `/keep` (0, 2, …).
fn sample(name: &str) -> TempFile {
    let file = TempFile::new(name);
    to_hdf5(
        &file,
        &[("/old", &ramp(40, 10, 1.0)), ("/keep", &ramp(20, 5, 2.0))],
    )
    .expect("the sample file");
    file
}

fn assert_names(err: &blockarray::Error, file: &Path, dataset: &str) {
    let msg = err.to_string();
    assert!(
        msg.contains(&file.display().to_string()) && msg.contains(dataset),
        "the message should name the file {} and the dataset {dataset}: {msg}",
        file.display()
    );
}

/// A sink that refuses to commit: a store it is part of must change nothing.
struct RefusesCommit;

impl ChunkSink<f64> for RefusesCommit {
    fn shape(&self) -> Vec<usize> {
        vec![40]
    }
    fn write_block(&self, _: &[usize], _: &ArrayD<f64>) -> blockarray::Result<()> {
        Ok(())
    }
    fn commit(&self) -> blockarray::Result<()> {
        Err(blockarray::Error::io("the refusing sink refuses to commit"))
    }
}

/// A sink whose commit puts a group where `dataset` of `file` is about to be committed, as
/// another writer could between two sinks' commits: the next sink's own commit then fails.
struct Occupies {
    file: PathBuf,
    dataset: &'static str,
}

impl ChunkSink<f64> for Occupies {
    fn shape(&self) -> Vec<usize> {
        vec![40]
    }
    fn write_block(&self, _: &[usize], _: &ArrayD<f64>) -> blockarray::Result<()> {
        Ok(())
    }
    fn commit(&self) -> blockarray::Result<()> {
        with_hdf5_lock(|| {
            let f = hdf5::File::open_rw(&self.file).expect("open read/write");
            f.create_group(self.dataset).expect("occupy the name");
        });
        Ok(())
    }
}

#[test]
fn a_multi_dataset_store_whose_later_commit_fails_leaves_the_file_as_it_was() {
    for (name, sched) in schedulers() {
        // A later sink of the run refuses to commit: the HDF5 sinks committed before it (one
        // replacing /old, two new in a new group) are rolled back.
        let file = sample("rollback.h5");
        let before = snapshot(file.path());
        let mut store = Hdf5Store::new(&file);
        store
            .dataset(
                "/old",
                &ramp(40, 10, -1.0),
                &DatasetOptions::new().overwrite(true),
            )
            .unwrap()
            .dataset("/group/new", &ramp(40, 10, 3.0), &DatasetOptions::new())
            .unwrap()
            .dataset(
                "/group/sub/other",
                &ramp(40, 10, 4.0),
                &DatasetOptions::new(),
            )
            .unwrap();
        store
            .computation()
            .store(&ramp(40, 10, 0.0), Arc::new(RefusesCommit))
            .unwrap();
        let err = store.run_with(&*sched, &dag_core::NoCallbacks).unwrap_err();
        assert!(
            err.to_string().contains("refuses to commit"),
            "{name}: {err}"
        );
        assert_eq!(snapshot(file.path()), before, "{name}");

        // An HDF5 sink's own commit fails (its name was taken after the others committed).
        let file = sample("own-commit.h5");
        let mut expected = snapshot(file.path());
        let mut store = Hdf5Store::new(&file);
        store
            .dataset(
                "/old",
                &ramp(40, 10, -1.0),
                &DatasetOptions::new().overwrite(true).deflate(1),
            )
            .unwrap()
            .dataset("/first", &ramp(40, 10, 3.0), &DatasetOptions::new())
            .unwrap();
        store
            .computation()
            .store(
                &ramp(40, 10, 0.0),
                Arc::new(Occupies {
                    file: file.path().to_path_buf(),
                    dataset: "/second",
                }),
            )
            .unwrap();
        store
            .dataset("/second", &ramp(40, 10, 5.0), &DatasetOptions::new())
            .unwrap();
        let err = store.run_with(&*sched, &dag_core::NoCallbacks).unwrap_err();
        assert_names(&err, file.path(), "/second");
        // Only the other writer's group is new; /old has its old values, /first is gone.
        expected.insert("/second".into(), None);
        assert_eq!(snapshot(file.path()), expected, "{name}");
        assert_eq!(read(file.path(), "/old"), ramp_values(40, 1.0));

        // The name is taken before the run ends: nothing is committed at all.
        let file = sample("taken.h5");
        let mut expected = snapshot(file.path());
        let mut store = Hdf5Store::new(&file);
        store
            .dataset(
                "/old",
                &ramp(40, 10, -1.0),
                &DatasetOptions::new().overwrite(true),
            )
            .unwrap()
            .dataset("/late", &ramp(40, 10, 5.0), &DatasetOptions::new())
            .unwrap();
        to_hdf5(&file, &[("/late", &ramp(4, 2, 7.0))]).unwrap();
        expected.insert("/late".into(), Some((vec![4], ramp_values(4, 7.0))));
        let err = store.run_with(&*sched, &dag_core::NoCallbacks).unwrap_err();
        assert_names(&err, file.path(), "/late");
        assert!(err.to_string().contains("already exists"), "{name}: {err}");
        assert_eq!(snapshot(file.path()), expected, "{name}");
    }
}

fn ramp_values(n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|i| i as f64 * scale).collect()
}

#[test]
fn a_successful_multi_dataset_store_replaces_and_leaves_no_hidden_dataset() {
    for (name, sched) in schedulers() {
        let file = sample("replace.h5");
        let mut store = Hdf5Store::new(&file);
        store
            .dataset(
                "/old",
                &ramp(30, 7, -1.0),
                &DatasetOptions::new().overwrite(true),
            )
            .unwrap()
            .dataset("/a/b", &ramp(40, 10, 3.0), &DatasetOptions::new())
            .unwrap();
        store.run_with(&*sched, &dag_core::NoCallbacks).unwrap();
        let snap = snapshot(file.path());
        let names: Vec<&str> = snap.keys().map(String::as_str).collect();
        assert_eq!(names, ["/a", "/a/b", "/keep", "/old"], "{name}");
        assert_eq!(read(file.path(), "/old"), ramp_values(30, -1.0));
        assert_eq!(read(file.path(), "/a/b"), ramp_values(40, 3.0));
    }
}

#[test]
fn a_failed_store_into_a_file_that_did_not_exist_leaves_no_file() {
    for (name, sched) in schedulers() {
        // Both datasets go into a new group /g: the sink that created it is aborted first,
        // the other must remove it once it is empty.
        let file = TempFile::new("new.h5");
        let mut store = Hdf5Store::new(&file);
        store
            .dataset("/g/good", &ramp(40, 10, 1.0), &DatasetOptions::new())
            .unwrap()
            .dataset(
                "/g/bad",
                &failing_at(&ramp(40, 10, 1.0), 2),
                &DatasetOptions::new(),
            )
            .unwrap();
        assert!(file.path().exists(), "the store creates the file at once");
        let err = store.run_with(&*sched, &dag_core::NoCallbacks).unwrap_err();
        assert!(
            err.to_string().contains("simulated failure"),
            "{name}: {err}"
        );
        assert!(
            !file.path().exists(),
            "{name}: a failed store left a file behind"
        );
        // The path is usable afterwards.
        to_hdf5_with(
            &file,
            &[("/x", &ramp(10, 5, 1.0))],
            &DatasetOptions::new(),
            &*sched,
        )
        .unwrap();
        assert_eq!(read(file.path(), "/x"), ramp_values(10, 1.0));
    }

    // The same when the run fails while committing (the new datasets were renamed into
    // place, then rolled back).
    let file = TempFile::new("new-commit.h5");
    let mut store = Hdf5Store::new(&file);
    store
        .dataset("/a", &ramp(40, 10, 1.0), &DatasetOptions::new())
        .unwrap()
        .dataset("/g/b", &ramp(40, 10, 2.0), &DatasetOptions::new())
        .unwrap();
    store
        .computation()
        .store(&ramp(40, 10, 0.0), Arc::new(RefusesCommit))
        .unwrap();
    let err = store.run().unwrap_err();
    assert!(err.to_string().contains("refuses to commit"), "{err}");
    assert!(!file.path().exists(), "a failed commit left a file behind");

    // A sink never used, on a new file: no file once it is dropped.
    let file = TempFile::new("unused.h5");
    let sink = Hdf5Sink::<f64>::create(&file, "/x", &[4], &DatasetOptions::new()).unwrap();
    assert!(file.path().exists());
    drop(sink);
    assert!(!file.path().exists());

    // Two sinks share the new file: the first failing store must not remove it while the
    // other may still commit into it.
    let file = TempFile::new("shared.h5");
    let pending =
        Arc::new(Hdf5Sink::<f64>::create(&file, "/later", &[10], &DatasetOptions::new()).unwrap());
    let err = failing_at(&ramp(40, 10, 1.0), 1)
        .store(Arc::new(
            Hdf5Sink::<f64>::create(&file, "/x", &[40], &DatasetOptions::new()).unwrap(),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("simulated failure"), "{err}");
    assert!(file.path().exists());
    ramp(10, 5, 2.0).store(pending.clone()).unwrap();
    drop(pending);
    assert_eq!(read(file.path(), "/later"), ramp_values(10, 2.0));

    // A file the failed store did not create stays, even when it holds nothing.
    let file = TempFile::new("empty.h5");
    with_hdf5_lock(|| drop(hdf5::File::create(file.path()).unwrap()));
    let err = to_hdf5(&file, &[("/x", &failing_at(&ramp(40, 10, 1.0), 0))]).unwrap_err();
    assert_names(&err, file.path(), "");
    assert!(snapshot(file.path()).is_empty());
}

#[test]
fn an_in_place_store_into_what_the_computation_reads_is_refused_and_writes_nothing() {
    let file = sample("alias.h5");
    let other = sample("alias-other.h5");
    let before = snapshot(file.path());
    let x = from_hdf5::<f64>(&file, "/old").unwrap();
    let reversed = x.slice(s![..;-1]).unwrap();

    let check = |err: blockarray::Error| {
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        assert_names(&err, file.path(), "/old");
        assert!(err.to_string().contains("reads it"), "{err}");
        assert_eq!(snapshot(file.path()), before);
    };
    // x[::-1] over x, through a store and through a bare sink.
    let mut store = Hdf5Store::new(&file);
    store.existing("/old", &reversed).unwrap();
    let err = store.run().unwrap_err();
    assert!(!err.to_string().contains("partly written"), "{err}");
    check(err);
    check(
        reversed
            .store(Arc::new(Hdf5Sink::<f64>::open(&file, "/old").unwrap()))
            .unwrap_err(),
    );
    // The same file under another spelling, the dataset under another spelling.
    let dir = file.path().parent().unwrap();
    let relative = dir.join(".").join(file.path().file_name().unwrap());
    check(
        reversed
            .store(Arc::new(
                Hdf5Sink::<f64>::open(&relative, "//old/").unwrap(),
            ))
            .unwrap_err(),
    );
    // Read through another HDF5 name of the same dataset (a soft link).
    with_hdf5_lock(|| {
        let f = hdf5::File::open_rw(file.path()).unwrap();
        f.link_soft("/old", "/alias").unwrap();
    });
    let before = snapshot(file.path());
    let via_link = from_hdf5::<f64>(&file, "/alias").unwrap();
    let err = (&via_link * 2.0)
        .store(Arc::new(Hdf5Sink::<f64>::open(&file, "/old").unwrap()))
        .unwrap_err();
    assert_names(&err, file.path(), "/old");
    assert_eq!(snapshot(file.path()), before);
    // Read as one member of a stack or a concatenation of files.
    let files = [other.path(), file.path()];
    let stacked = stack_hdf5::<f64, _>(&files, "/old", 0, &ReadOptions::new()).unwrap();
    let err = stacked
        .sum(Some(&[0]), false)
        .unwrap()
        .store(Arc::new(Hdf5Sink::<f64>::open(&file, "/old").unwrap()))
        .unwrap_err();
    assert_names(&err, file.path(), "/old");
    let joined = concatenate_hdf5::<f64, _>(&files, "/old", 0, &ReadOptions::new()).unwrap();
    let err = joined
        .slice(s![20..60])
        .unwrap()
        .store(Arc::new(Hdf5Sink::<f64>::open(&file, "/old").unwrap()))
        .unwrap_err();
    assert_names(&err, file.path(), "/old");
    assert_eq!(snapshot(file.path()), before);

    // In place into a dataset the computation does not read is fine, and so is writing a new
    // dataset that replaces the one read (it is renamed into place after every read).
    let mut store = Hdf5Store::new(&other);
    store.existing("/old", &reversed).unwrap();
    store.run().unwrap();
    assert_eq!(
        read(other.path(), "/old"),
        ramp_values(40, 1.0).into_iter().rev().collect::<Vec<_>>()
    );
    let mut store = Hdf5Store::new(&file);
    store
        .dataset("/old", &reversed, &DatasetOptions::new().overwrite(true))
        .unwrap();
    store.run().unwrap();
    assert_eq!(
        read(file.path(), "/old"),
        ramp_values(40, 1.0).into_iter().rev().collect::<Vec<_>>()
    );
}

/// Forwards to an HDF5 sink, but fails the `fail_at`-th block written (counting from 0), or
/// sleeps before each block when `delay` is set.
struct Wrapped {
    inner: Arc<Hdf5Sink<f64>>,
    fail_at: Option<usize>,
    delay: Duration,
    written: AtomicUsize,
}

impl Wrapped {
    fn new(inner: Hdf5Sink<f64>, fail_at: Option<usize>, delay: Duration) -> Arc<Wrapped> {
        Arc::new(Wrapped {
            inner: Arc::new(inner),
            fail_at,
            delay,
            written: AtomicUsize::new(0),
        })
    }
}

impl ChunkSink<f64> for Wrapped {
    fn shape(&self) -> Vec<usize> {
        ChunkSink::shape(&*self.inner)
    }
    fn write_block(&self, offset: &[usize], block: &ArrayD<f64>) -> blockarray::Result<()> {
        std::thread::sleep(self.delay);
        let n = self.written.fetch_add(1, Ordering::SeqCst);
        if self.fail_at == Some(n) {
            return Err(blockarray::Error::io(format!(
                "{}: the disk filled up",
                self.inner.describe()
            )));
        }
        self.inner.write_block(offset, block)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn prepare(&self) -> blockarray::Result<()> {
        ChunkSink::prepare(&*self.inner)
    }
    fn commit(&self) -> blockarray::Result<()> {
        ChunkSink::commit(&*self.inner)
    }
    fn rollback(&self) {
        ChunkSink::rollback(&*self.inner)
    }
    fn finish(&self) {
        ChunkSink::finish(&*self.inner)
    }
    fn abort(&self) {
        ChunkSink::abort(&*self.inner)
    }
    fn writes_in_place(&self) -> Option<String> {
        self.inner.writes_in_place()
    }
}

fn run_store(
    sched: &dyn Scheduler,
    stores: Vec<(BlockArray<f64>, Arc<Wrapped>)>,
) -> blockarray::Result<()> {
    let mut c = blockarray::Computation::new();
    for (array, sink) in stores {
        c.store(&array, sink).unwrap();
    }
    c.run(sched).map(|_| ())
}

#[test]
fn a_sink_that_fails_part_way_leaves_new_and_replaced_datasets_as_they_were() {
    for (name, sched) in schedulers() {
        let file = sample("part-way.h5");
        let before = snapshot(file.path());
        let new = Hdf5Sink::create(&file, "/new", &[40], &DatasetOptions::new()).unwrap();
        let replace =
            Hdf5Sink::create(&file, "/old", &[40], &DatasetOptions::new().overwrite(true)).unwrap();
        let err = run_store(
            &*sched,
            vec![
                (ramp(40, 10, 2.0), Wrapped::new(new, None, Duration::ZERO)),
                (
                    ramp(40, 10, 3.0),
                    Wrapped::new(replace, Some(2), Duration::ZERO),
                ),
            ],
        )
        .unwrap_err();
        assert_names(&err, file.path(), "/old");
        assert!(err.to_string().contains("disk filled up"), "{name}: {err}");
        assert_eq!(snapshot(file.path()), before, "{name}");
    }
}

#[test]
fn a_failed_in_place_write_leaves_each_value_old_or_new_and_says_so() {
    for (name, sched) in schedulers() {
        let file = sample("in-place.h5");
        let old = ramp_values(40, 1.0);
        let new = ramp_values(40, -1.0);
        // The array fails at its third block.
        let mut store = Hdf5Store::new(&file);
        store
            .existing("/old", &failing_at(&ramp(40, 10, -1.0), 2))
            .unwrap();
        let err = store.run_with(&*sched, &dag_core::NoCallbacks).unwrap_err();
        assert!(
            err.to_string().contains("simulated failure"),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("partly written"), "{name}: {err}");
        let now = read(file.path(), "/old");
        assert!(
            now.iter()
                .zip(&old)
                .zip(&new)
                .all(|((v, o), n)| v == o || v == n),
            "{name}: {now:?}"
        );
        // Block 2 never reached the file.
        assert_eq!(now[20..30], old[20..30], "{name}");
        // The sink fails part-way instead.
        let sink = Hdf5Sink::<f64>::open(&file, "/keep").unwrap();
        let err = run_store(
            &*sched,
            vec![(
                ramp(20, 5, -1.0),
                Wrapped::new(sink, Some(1), Duration::ZERO),
            )],
        )
        .unwrap_err();
        assert_names(&err, file.path(), "/keep");
        let keep = read(file.path(), "/keep");
        let (old, new) = (ramp_values(20, 2.0), ramp_values(20, -1.0));
        assert!(
            keep.iter()
                .zip(&old)
                .zip(&new)
                .all(|((v, o), n)| v == o || v == n),
            "{name}: {keep:?}"
        );
    }
}

#[test]
fn a_slow_sink_still_commits_everything() {
    for (name, sched) in schedulers() {
        let file = sample("slow.h5");
        let a =
            Hdf5Sink::create(&file, "/slow/a", &[40], &DatasetOptions::new().deflate(1)).unwrap();
        let b =
            Hdf5Sink::create(&file, "/old", &[40], &DatasetOptions::new().overwrite(true)).unwrap();
        let delay = Duration::from_millis(3);
        run_store(
            &*sched,
            vec![
                (ramp(40, 10, 2.0), Wrapped::new(a, None, delay)),
                (ramp(40, 8, 3.0), Wrapped::new(b, None, delay)),
            ],
        )
        .unwrap();
        let names: Vec<String> = snapshot(file.path()).into_keys().collect();
        assert_eq!(names, ["/keep", "/old", "/slow", "/slow/a"], "{name}");
        assert_eq!(read(file.path(), "/slow/a"), ramp_values(40, 2.0));
        assert_eq!(read(file.path(), "/old"), ramp_values(40, 3.0));
    }
}

/// Overwrite the first stored chunk of `/old` with garbage; returns the
/// position of that chunk's first element.
fn corrupt_first_chunk(file: &Path) -> usize {
    let (addr, size, offset) = with_hdf5_lock(|| {
        let f = hdf5::File::open(file).expect("open");
        let info = f
            .dataset("/old")
            .expect("old")
            .chunk_info(0)
            .expect("chunk 0");
        (info.addr, info.size, info.offset[0] as usize)
    });
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .expect("open");
    f.seek(SeekFrom::Start(addr)).expect("seek");
    f.write_all(&vec![0xA5; size as usize]).expect("garbage");
    offset
}

#[test]
fn corrupt_and_truncated_files_are_errors_naming_file_and_dataset_and_get_no_writes() {
    // A corrupt chunk: reading it fails; a store computed from it creates nothing and
    // replaces nothing; the other chunks still read.
    let file = TempFile::new("corrupt.h5");
    to_hdf5_with(
        &file,
        &[("/old", &ramp(40, 10, 1.0)), ("/keep", &ramp(40, 10, 2.0))],
        &DatasetOptions::new().deflate(4).shuffle(true),
        &sched_sync::SyncScheduler::new(),
    )
    .unwrap();
    let bad = corrupt_first_chunk(file.path());
    let x = from_hdf5::<f64>(&file, "/old").unwrap();
    let err = x.compute().unwrap_err();
    assert_names(&err, file.path(), "/old");
    let good = (bad + 10) % 40;
    let intact = x.slice(s![good..good + 10]).unwrap().compute().unwrap();
    assert_eq!(
        intact.into_iter().collect::<Vec<_>>(),
        ramp_values(40, 1.0)[good..good + 10]
    );
    let keep = read(file.path(), "/keep");
    let mut store = Hdf5Store::new(&file);
    store
        .dataset("/derived", &(&x * 2.0), &DatasetOptions::new())
        .unwrap()
        .dataset("/keep", &(&x + 1.0), &DatasetOptions::new().overwrite(true))
        .unwrap();
    let err = store.run().unwrap_err();
    assert_names(&err, file.path(), "/old");
    let names: Vec<String> = with_hdf5_lock(|| {
        hdf5::File::open(file.path())
            .unwrap()
            .member_names()
            .unwrap()
    });
    assert_eq!(names, ["keep", "old"]);
    assert_eq!(read(file.path(), "/keep"), keep);

    // Truncated (to half, and to a few bytes) and not HDF5 at all: reads, new datasets and
    // in-place writes are refused, naming file and dataset, and the bytes stay as they were.
    let truncated = sample("truncated.h5");
    let len = std::fs::metadata(&truncated).unwrap().len();
    let garbage = TempFile::new("garbage.h5");
    std::fs::write(&garbage, b"not HDF5 at all\n".repeat(64)).unwrap();
    for (f, cut) in [
        (&truncated, Some(len / 2)),
        (&truncated, Some(5)),
        (&garbage, None),
    ] {
        if let Some(cut) = cut {
            std::fs::OpenOptions::new()
                .write(true)
                .open(f)
                .unwrap()
                .set_len(cut)
                .unwrap();
        }
        let bytes = std::fs::read(f).unwrap();
        let err = from_hdf5::<f64>(f, "/old").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert_names(&err, f.path(), "/old");
        let err = to_hdf5(f, &[("/new", &ramp(10, 5, 1.0))]).unwrap_err();
        assert_names(&err, f.path(), "/new");
        let err = Hdf5Sink::<f64>::open(f, "/old").err().unwrap();
        assert_names(&err, f.path(), "/old");
        let err = Hdf5Sink::<f64>::create(f, "/old", &[40], &DatasetOptions::new().overwrite(true))
            .err()
            .unwrap();
        assert_names(&err, f.path(), "/old");
        assert_eq!(std::fs::read(f).unwrap(), bytes, "the file was written to");
    }
}

#[test]
fn read_only_files_are_read_and_writes_into_them_are_refused_cleanly() {
    // Read-only permissions do not keep a file from being read (sources open read-only).
    let file = sample("read-only.h5");
    let mut perms = std::fs::metadata(&file).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&file, perms).unwrap();
    assert_eq!(read(file.path(), "/old"), ramp_values(40, 1.0));

    // A file another handle of this process holds open read-only cannot be opened for
    // writing (HDF5 refuses): every write is an error naming file and dataset, and the file
    // is unchanged. Once that handle is closed, writing works.
    let file = sample("held.h5");
    let before = snapshot(file.path());
    let held = with_hdf5_lock(|| hdf5::File::open(file.path()).unwrap());
    let err = to_hdf5(&file, &[("/new", &ramp(10, 5, 1.0))]).unwrap_err();
    assert_names(&err, file.path(), "/new");
    let err = Hdf5Sink::<f64>::open(&file, "/old").err().unwrap();
    assert_names(&err, file.path(), "/old");
    let err = Hdf5Sink::<f64>::create(&file, "/old", &[40], &DatasetOptions::new().overwrite(true))
        .err()
        .unwrap();
    assert_names(&err, file.path(), "/old");
    with_hdf5_lock(|| drop(held));
    assert_eq!(snapshot(file.path()), before);
    to_hdf5(&file, &[("/new", &ramp(10, 5, 1.0))]).unwrap();
    assert_eq!(read(file.path(), "/new"), ramp_values(10, 1.0));
}
