//! Bad inputs give an `Err` naming the file and the dataset — never a panic.

mod common;

use blockarray::{BlockArray, ErrorKind};
use blockarray_hdf5::{
    ChunkIo, DatasetOptions, Hdf5Sink, Hdf5Store, ReadOptions, concatenate_hdf5, from_hdf5,
    from_hdf5_with, glob_files, stack_hdf5, to_hdf5, to_hdf5_with, with_hdf5_lock,
};
use common::TempPath;
use sched_sync::SyncScheduler;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

fn names(err: &blockarray::Error, file: &Path, dataset: &str) {
    let msg = err.to_string();
    assert!(
        msg.contains(&file.display().to_string()),
        "message does not name the file {}: {msg}",
        file.display()
    );
    assert!(
        msg.contains(dataset),
        "message does not name the dataset {dataset}: {msg}"
    );
}

/// A file holding `/x`: 40 × 30 float64 in 10 × 10 chunks, deflated and shuffled.
fn sample(name: &str) -> TempPath {
    let file = TempPath::new(name);
    let x = BlockArray::<f64>::from_fn(&[40, 30], [10, 10], "sample", |i| {
        (i[0] * 31 + i[1] * 7) as f64 * 0.25
    })
    .expect("x");
    to_hdf5_with(
        &file,
        &[("/x", &x)],
        &DatasetOptions::new().deflate(4).shuffle(true),
        &SyncScheduler::new(),
    )
    .expect("sample file");
    file
}

#[test]
fn missing_file() {
    let file = TempPath::new("nowhere.h5");
    let err = from_hdf5::<f64>(&file, "/x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    names(&err, file.path(), "/x");
    assert!(err.to_string().contains("no such file"), "{err}");
    let err = Hdf5Sink::<f64>::open(&file, "/x")
        .err()
        .expect("no file to write into");
    names(&err, file.path(), "/x");
    assert!(
        !file.path().exists(),
        "opening for writing in place must not create the file"
    );
}

#[test]
fn missing_dataset() {
    let file = sample("missing-ds.h5");
    let err = from_hdf5::<f64>(&file, "/y").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    names(&err, file.path(), "/y");
    assert!(err.to_string().contains("no such dataset"), "{err}");
    assert!(err.to_string().contains('x'), "lists what is there: {err}");
    let err = from_hdf5::<f64>(&file, "/group/deeper/y").unwrap_err();
    names(&err, file.path(), "/group/deeper/y");
    // A path through a dataset.
    let err = from_hdf5::<f64>(&file, "/x/inner").unwrap_err();
    names(&err, file.path(), "/x/inner");
    assert!(err.to_string().contains("not a group"), "{err}");
    // The root group is no dataset name.
    let err = from_hdf5::<f64>(&file, "/").unwrap_err();
    names(&err, file.path(), "/");
}

#[test]
fn wrong_element_type() {
    let file = sample("wrong-type.h5");
    let err = from_hdf5::<i32>(&file, "/x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Type);
    names(&err, file.path(), "/x");
    let msg = err.to_string();
    assert!(msg.contains("float64") && msg.contains("int32"), "{msg}");
    let err = from_hdf5::<f32>(&file, "/x").unwrap_err();
    assert!(err.to_string().contains("float32"), "{err}");
    let err = Hdf5Sink::<u8>::open(&file, "/x")
        .err()
        .expect("type mismatch");
    assert_eq!(err.kind(), ErrorKind::Type);
    names(&err, file.path(), "/x");
    let err = from_hdf5::<num_complex::Complex<f64>>(&file, "/x").unwrap_err();
    assert!(err.to_string().contains("complex128"), "{err}");
}

#[test]
fn shape_mismatch_with_an_existing_dataset() {
    let file = sample("shape.h5");
    let y = BlockArray::<f64>::ones(&[40, 31], [10, 10]).expect("y");
    let mut store = Hdf5Store::new(&file);
    let err = store.existing("/x", &y).err().expect("shape mismatch");
    assert_eq!(err.kind(), ErrorKind::Shape);
    names(&err, file.path(), "/x");
    let msg = err.to_string();
    assert!(
        msg.contains("(40, 30)") && msg.contains("(40, 31)"),
        "{msg}"
    );
    // A refused store leaves the dataset's name free for the call that fixes it (the name
    // was taken first, so the retry was "stored more than once").
    let fixed = BlockArray::<f64>::ones(&[40, 30], [10, 10]).expect("fixed");
    store.existing("/x", &fixed).expect("the fixed array");
    drop(store);
    let v = BlockArray::<f64>::ones(&[6], 3).expect("v");
    let unknown = v.mask(&v.greater(0.0).expect("mask")).expect("masked");
    let mut store = Hdf5Store::new(&file);
    let err = store
        .dataset("/masked", &unknown, &DatasetOptions::new())
        .err()
        .expect("unknown sizes");
    assert!(err.to_string().contains("compute_chunk_sizes"), "{err}");
    let known = unknown.compute_chunk_sizes().expect("sizes");
    store
        .dataset("/masked", &known, &DatasetOptions::new())
        .expect("known sizes");
    store.run().expect("stored");
    let back = from_hdf5::<f64>(&file, "/masked").expect("masked");
    assert_eq!(back.compute().expect("read").sum(), 6.0);
    // A block that does not fit is refused by the sink itself, too, even at an offset whose
    // end overflows.
    let sink = Hdf5Sink::<f64>::open(&file, "/x").expect("sink");
    let block = ndarray::ArrayD::from_elem(ndarray::IxDyn(&[10, 10]), 1.0);
    let err = blockarray::ChunkSink::write_block(&sink, &[35, 0], &block).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Shape);
    names(&err, file.path(), "/x");
    let err = blockarray::ChunkSink::write_block(&sink, &[usize::MAX, 0], &block).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Shape);
    // One store cannot write a dataset twice (however the path is spelled).
    let x = BlockArray::<f64>::ones(&[40, 30], [10, 10]).expect("ones");
    let mut store = Hdf5Store::new(&file);
    store
        .dataset("/twice", &x, &DatasetOptions::new())
        .expect("first");
    let err = store
        .dataset("twice", &x, &DatasetOptions::new())
        .err()
        .expect("second");
    assert_eq!(err.kind(), ErrorKind::Index);
    names(&err, file.path(), "/twice");
    assert!(err.to_string().contains("more than once"), "{err}");
    let err = store.existing("/twice", &x).err().expect("in place too");
    assert_eq!(err.kind(), ErrorKind::Index);
    store.run().expect("the first one is stored");
    // The dataset is untouched.
    let back = from_hdf5::<f64>(&file, "/x")
        .expect("x")
        .compute()
        .expect("read");
    assert_eq!(back[[39, 29]], (39 * 31 + 29 * 7) as f64 * 0.25);
}

#[test]
fn a_group_is_not_a_dataset() {
    let file = TempPath::new("group.h5");
    let x = BlockArray::<f64>::ones(&[4], [2]).expect("x");
    to_hdf5(&file, &[("/grp/a", &x), ("/grp/b", &x)]).expect("write");
    let err = from_hdf5::<f64>(&file, "/grp").unwrap_err();
    names(&err, file.path(), "/grp");
    assert!(err.to_string().contains("is a group"), "{err}");
    assert!(err.to_string().contains("a, b"), "lists the members: {err}");
    // Nor can a dataset be written over a group.
    let err = to_hdf5(&file, &[("/grp", &x)]).unwrap_err();
    names(&err, file.path(), "/grp");
    let err = Hdf5Sink::<f64>::open(&file, "/grp").err().expect("group");
    names(&err, file.path(), "/grp");
}

#[test]
fn not_an_hdf5_file() {
    let file = TempPath::new("text.h5");
    std::fs::write(&file, b"this is not HDF5, just some text\n".repeat(100)).expect("write");
    let err = from_hdf5::<f64>(&file, "/x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    names(&err, file.path(), "/x");
    assert!(err.to_string().contains("not an HDF5 file"), "{err}");
    // Writing into it refuses too, and leaves it alone.
    let x = BlockArray::<f64>::ones(&[4], [2]).expect("x");
    let err = to_hdf5(&file, &[("/x", &x)]).unwrap_err();
    names(&err, file.path(), "/x");
    assert!(
        std::fs::read(&file)
            .expect("read")
            .starts_with(b"this is not HDF5")
    );
    // A directory.
    let dir = TempPath::new("dir.h5");
    std::fs::create_dir(&dir).expect("mkdir");
    let err = from_hdf5::<f64>(&dir, "/x").unwrap_err();
    names(&err, dir.path(), "/x");
}

#[test]
fn truncated_file() {
    let file = sample("truncated.h5");
    let len = std::fs::metadata(&file).expect("meta").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .expect("open");
    f.set_len(len / 2).expect("truncate");
    drop(f);
    let err = from_hdf5::<f64>(&file, "/x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    names(&err, file.path(), "/x");
    // Truncated to a few bytes of the signature.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .expect("open");
    f.set_len(5).expect("truncate");
    drop(f);
    let err = from_hdf5::<f64>(&file, "/x").unwrap_err();
    names(&err, file.path(), "/x");
}

/// Overwrite the middle of the first stored chunk of `/x` with garbage.
fn corrupt_first_chunk(file: &Path) {
    let (addr, size) = with_hdf5_lock(|| {
        let f = hdf5::File::open(file).expect("open");
        let ds = f.dataset("/x").expect("x");
        let info = ds.chunk_info(0).expect("chunk 0");
        (info.addr, info.size)
    });
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .expect("open");
    f.seek(SeekFrom::Start(addr + size / 3)).expect("seek");
    f.write_all(&[0xA5; 64]).expect("garbage");
}

#[test]
fn corrupt_chunk_data() {
    let file = sample("corrupt.h5");
    corrupt_first_chunk(file.path());
    for io in [ChunkIo::Auto, ChunkIo::Library] {
        // Opening works (the metadata is intact); reading the bad chunk fails cleanly.
        let x = from_hdf5_with::<f64>(&file, "/x", &ReadOptions::new().io(io)).expect("open");
        let err = x.compute().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Graph, "{err}");
        names(&err, file.path(), "/x");
        // Other chunks still read.
        let tail = x
            .slice(blockarray::s![30.., 20..])
            .expect("slice")
            .compute()
            .expect("an intact chunk");
        assert_eq!(tail.len(), 100);
    }
}

#[test]
fn bad_creation_options() {
    let file = TempPath::new("options.h5");
    let x = BlockArray::<f64>::ones(&[8, 8], [4, 4]).expect("x");
    let mut store = Hdf5Store::new(&file);
    let err = store
        .dataset("/a", &x, &DatasetOptions::new().deflate(12))
        .err()
        .expect("level");
    names(&err, file.path(), "/a");
    let err = store
        .dataset("/b", &x, &DatasetOptions::new().chunks([4]))
        .err()
        .expect("rank");
    assert_eq!(err.kind(), ErrorKind::Chunks);
    names(&err, file.path(), "/b");
    let err = store
        .dataset("/c", &x, &DatasetOptions::new().chunks([0, 4]))
        .err()
        .expect("zero");
    names(&err, file.path(), "/c");
    drop(store);
    // Existing dataset without overwrite.
    to_hdf5(&file, &[("/d", &x)]).expect("d");
    let err = to_hdf5(&file, &[("/d", &x)]).unwrap_err();
    names(&err, file.path(), "/d");
    assert!(err.to_string().contains("already exists"), "{err}");
    // Path through a dataset.
    let err = to_hdf5(&file, &[("/d/e", &x)]).unwrap_err();
    names(&err, file.path(), "/d/e");
    assert_eq!(common::all_links(file.path()), ["/d"]);
}

#[test]
fn many_files_with_bad_members() {
    let dir = TempPath::new("many");
    std::fs::create_dir(&dir).expect("mkdir");
    let a = BlockArray::<f64>::ones(&[4, 3], [2, 3]).expect("a");
    let b = BlockArray::<f64>::ones(&[5, 3], [2, 3]).expect("b");
    let fa = dir.path().join("a.h5");
    let fb = dir.path().join("b.h5");
    to_hdf5(&fa, &[("/v", &a)]).expect("a");
    to_hdf5(&fb, &[("/v", &b)]).expect("b");
    let err = stack_hdf5::<f64, _>(&[&fa, &fb], "/v", 0, &ReadOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Shape);
    let msg = err.to_string();
    assert!(
        msg.contains("a.h5") && msg.contains("b.h5") && msg.contains("/v"),
        "{msg}"
    );
    // Concatenation along the differing axis is fine.
    let c = concatenate_hdf5::<f64, _>(&[&fa, &fb], "/v", 0, &ReadOptions::new()).expect("cat");
    assert_eq!(c.shape(), [9, 3]);
    // ... but not along another.
    let err = concatenate_hdf5::<f64, _>(&[&fa, &fb], "/v", 1, &ReadOptions::new()).unwrap_err();
    assert!(err.to_string().contains("axis 1"), "{err}");
    // A missing member names its file.
    let fc = dir.path().join("c.h5");
    let err = stack_hdf5::<f64, _>(&[&fa, &fc], "/v", 0, &ReadOptions::new()).unwrap_err();
    names(&err, &fc, "/v");
    // No files at all.
    let none: [&Path; 0] = [];
    assert!(stack_hdf5::<f64, _>(&none, "/v", 0, &ReadOptions::new()).is_err());
    let err = concatenate_hdf5::<f64, _>(&none, "/v", 0, &ReadOptions::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("no HDF5 files given to read dataset \"/v\""),
        "{err}"
    );
    let err = glob_files(&format!("{}/nothing-*.h5", dir.path().display())).unwrap_err();
    assert!(err.to_string().contains("matches no file"), "{err}");
    assert!(glob_files("[").is_err());
}

/// Two sinks into one dataset in one computation are refused before anything runs: the second
/// to commit replaced the first's new dataset (which was then deleted as its backup), or an
/// in-place sink wrote into the dataset a new one replaced, and the run returned `Ok`.
#[test]
fn two_sinks_into_one_dataset_are_refused() {
    let file = TempPath::new("two_sinks.h5");
    let a = BlockArray::<f64>::ones(&[4], 2).expect("a");
    let b = &a * 2.0;
    to_hdf5(&file, &[("/x", &a)]).expect("write");
    let o = DatasetOptions::new().overwrite(true);
    let sinks: [(&str, &str); 3] = [("new", "new"), ("/x", "x"), ("existing", "/x")];
    for (first, second) in sinks {
        let sink = |name: &str| -> std::sync::Arc<dyn blockarray::ChunkSink<f64>> {
            if name == "existing" {
                std::sync::Arc::new(Hdf5Sink::<f64>::open(&file, "/x").expect("open"))
            } else {
                std::sync::Arc::new(Hdf5Sink::<f64>::create(&file, name, &[4], &o).expect("create"))
            }
        };
        let mut c = blockarray::Computation::new();
        c.store(&a, sink(first)).expect("first");
        c.store(&b, sink(second)).expect("second");
        let Err(e) = c.run(&SyncScheduler::new()) else {
            panic!("{first}, {second}: not refused")
        };
        assert!(
            e.to_string().contains("same storage"),
            "{first}, {second}: {e}"
        );
    }
    // Nothing was written: /x still holds the ones, and no /new was made.
    let back = from_hdf5::<f64>(&file, "/x")
        .expect("x")
        .compute()
        .expect("read");
    assert_eq!(back.sum(), 4.0);
    assert!(from_hdf5::<f64>(&file, "/new").is_err());
}

/// A scheduler that says its runs are spread over two processes, this one being `index`
/// (and runs every task here).
struct OneOfTwo {
    index: usize,
    inner: SyncScheduler,
}

impl dag_core::Scheduler for OneOfTwo {
    fn name(&self) -> &str {
        "one-of-two"
    }
    fn execute(
        &self,
        plan: &dag_core::Plan,
        callbacks: &dyn dag_core::Callbacks,
    ) -> Result<dag_core::Execution, dag_core::Error> {
        self.inner.execute(plan, callbacks)
    }
    fn processes(&self) -> usize {
        2
    }
    fn process_index(&self) -> usize {
        self.index
    }
}

/// An HDF5 sink made in a process other than the first of a distributed run is refused
/// before anything runs (its blocks go to the first process: it would have committed a
/// dataset of zeros), and leaves no dataset; the first process's is accepted.
#[test]
fn hdf5_sinks_of_other_processes_are_refused() {
    let file = TempPath::new("second_process.h5");
    let x =
        BlockArray::<f64>::from_fn(&[6, 4], [3, 2], "x", |i| (i[0] * 4 + i[1]) as f64).expect("x");
    let second = OneOfTwo {
        index: 1,
        inner: SyncScheduler::new(),
    };
    let sink = Hdf5Sink::<f64>::create(&file, "/x", &[6, 4], &DatasetOptions::new()).expect("sink");
    let e = x
        .store_with(std::sync::Arc::new(sink), &second)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    names(&e, file.path(), "/x");
    assert!(e.to_string().contains("process 1 of a run over 2"), "{e}");
    assert!(from_hdf5::<f64>(&file, "/x").is_err(), "a dataset was left");
    let first = OneOfTwo {
        index: 0,
        inner: SyncScheduler::new(),
    };
    let sink = Hdf5Sink::<f64>::create(&file, "/x", &[6, 4], &DatasetOptions::new()).expect("sink");
    x.store_with(std::sync::Arc::new(sink), &first)
        .expect("the first process's sink");
    let back = from_hdf5::<f64>(&file, "/x")
        .expect("x")
        .compute()
        .expect("read");
    assert_eq!(back, x.compute().expect("x"));
}

/// In a store over several processes, an error from the file (seen by the first process
/// only) is returned by the run, which every process reaches, not by `dataset`: a first
/// process returning there would leave the others waiting for it in the run.
#[test]
fn file_errors_of_distributed_stores_are_returned_by_the_run() {
    let file = sample("deferred.h5");
    let x = BlockArray::<f64>::ones(&[40, 30], [10, 10]).expect("x");
    let first = OneOfTwo {
        index: 0,
        inner: SyncScheduler::new(),
    };
    for existing in [false, true] {
        let mut store = Hdf5Store::for_scheduler(&file, &first);
        if existing {
            // The element type does not match the dataset's.
            let y = BlockArray::<i32>::ones(&[40, 30], [10, 10]).expect("y");
            store.existing("/x", &y).expect("deferred");
        } else {
            store
                .dataset("/x", &x, &DatasetOptions::new())
                .expect("deferred");
        }
        let e = store.run_with(&first, &dag_core::NoCallbacks).unwrap_err();
        names(&e, file.path(), "/x");
    }
    // Nothing was written: /x holds the sample still.
    let back = from_hdf5::<f64>(&file, "/x")
        .expect("x")
        .compute()
        .expect("read");
    assert_eq!(back[[1, 2]], (31 + 14) as f64 * 0.25);
    // One process: the same error from `dataset` itself.
    let mut store = Hdf5Store::for_scheduler(&file, &SyncScheduler::new());
    let e = store
        .dataset("/x", &x, &DatasetOptions::new())
        .err()
        .expect("a taken name");
    names(&e, file.path(), "/x");
}
