//! Bad input is an error naming the store, the array (and the chunk key, for a bad chunk),
//! raised when the expression or store is built wherever it can be known then — never a
//! panic, never a wrong answer.

mod common;

use blockarray::{BlockArray, ChunkSink, ChunkSpec, ErrorKind};
use blockarray_zarr::{
    ArrayOptions, Compressor, ReadOptions, UpdateOptions, ZarrSink, ZarrStore, ZarrVersion,
    array_info, concatenate_zarr, from_zarr, stack_zarr, to_zarr, to_zarr_with,
};
use common::TempPath;
use ndarray::{ArrayD, IxDyn};
use sched_sync::SyncScheduler;
use std::path::Path;
use std::sync::Arc;

/// A store with `x` (float64, 20 × 30 in chunks of 10 × 10, zstd) and group `g` holding
/// `y`.
fn store_with_x(name: &str) -> TempPath {
    let dir = TempPath::new(name);
    let x = BlockArray::<f64>::from_fn(&[20, 30], [10, 10], "v", |i| (i[0] * 30 + i[1]) as f64)
        .expect("x");
    to_zarr(&dir, &[("x", &x), ("g/y", &x)]).expect("store");
    dir
}

fn assert_names(e: &blockarray::Error, store: &Path, array: &str) {
    let msg = e.to_string();
    assert!(
        msg.contains(&store.display().to_string()) || msg.contains(&*store.to_string_lossy()),
        "the store is not named: {msg}"
    );
    assert!(
        msg.contains(&format!("\"{array}\"")),
        "the array is not named: {msg}"
    );
}

#[test]
fn a_missing_store_is_named() {
    let dir = TempPath::new("nothing-here.zarr");
    let e = from_zarr::<f64>(&dir, "x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert_names(&e, dir.path(), "/x");
    assert!(e.to_string().contains("does not exist"), "{e}");
    let e = array_info(&dir, "x").unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn a_file_is_not_a_store() {
    let file = TempPath::new("file.zarr");
    std::fs::write(&file, b"PK\x03\x04 a zip, say").expect("file");
    let e = from_zarr::<f64>(&file, "x").unwrap_err();
    assert_names(&e, file.path(), "/x");
    assert!(e.to_string().contains("not a directory"), "{e}");
    let e = ZarrSink::<f64>::create(&file, "x", &[3], &ArrayOptions::new())
        .err()
        .expect("refused");
    assert!(e.to_string().contains("is a file"), "{e}");
}

#[test]
fn a_missing_array_lists_what_the_store_holds() {
    let dir = store_with_x("missing.zarr");
    let e = from_zarr::<f64>(&dir, "/z").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert_names(&e, dir.path(), "/z");
    assert!(e.to_string().contains("no such array"), "{e}");
    assert!(
        e.to_string().contains("/x") && e.to_string().contains("/g/y"),
        "{e}"
    );
    // A group is not an array.
    let e = from_zarr::<f64>(&dir, "g").unwrap_err();
    assert!(e.to_string().contains("is a group"), "{e}");
    // A bad path.
    let e = from_zarr::<f64>(&dir, "g/../x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Index);
}

/// Rewrite `x`'s metadata with `edit`.
fn edit_metadata(dir: &Path, array: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(array).join("zarr.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("metadata")).expect("json");
    edit(&mut meta);
    std::fs::write(&path, serde_json::to_vec(&meta).expect("json")).expect("write");
}

#[test]
fn an_unsupported_codec_or_data_type_is_named() {
    let dir = store_with_x("codec.zarr");
    edit_metadata(dir.path(), "x", |m| {
        m["codecs"][1] = serde_json::json!({"name": "fancy_squeeze", "configuration": {}});
    });
    let e = from_zarr::<f64>(&dir, "x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_names(&e, dir.path(), "/x");
    assert!(e.to_string().contains("fancy_squeeze"), "{e}");
    // A data type zarrs does not know.
    edit_metadata(dir.path(), "g/y", |m| {
        m["data_type"] = serde_json::json!("float17")
    });
    let e = from_zarr::<f64>(&dir, "g/y").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("float17"), "{e}");
    // A chunk grid we do not read.
    let dir = store_with_x("grid.zarr");
    edit_metadata(
        dir.path(),
        "x",
        |m| m["chunk_grid"] = serde_json::json!({"name": "rectangular", "configuration": {"chunk_shape": [[10, 10], 10]}}),
    );
    let e = from_zarr::<f64>(&dir, "x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert_names(&e, dir.path(), "/x");
}

/// A chunk shape a buffer cannot hold is refused when the array is opened,
/// naming it (its bytes overflowed a product: a panic in debug builds).
#[test]
fn impossible_chunk_shapes_are_named() {
    let dir = store_with_x("huge-chunk.zarr");
    edit_metadata(dir.path(), "x", |m| {
        m["chunk_grid"]["configuration"]["chunk_shape"] = serde_json::json!([1u64 << 62, 10]);
    });
    let e = from_zarr::<f64>(&dir, "x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Chunks, "{e}");
    assert_names(&e, dir.path(), "/x");
    assert!(e.to_string().contains("chunk shape"), "{e}");
    // An empty one zarrs refuses itself.
    edit_metadata(dir.path(), "x", |m| {
        m["chunk_grid"]["configuration"]["chunk_shape"] = serde_json::json!([0, 10]);
    });
    assert!(from_zarr::<f64>(&dir, "x").is_err());
}

#[test]
fn the_wrong_element_type_names_both() {
    let dir = store_with_x("type.zarr");
    let e = from_zarr::<i32>(&dir, "x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Type);
    assert_names(&e, dir.path(), "/x");
    assert!(e.to_string().contains("holds float64, not int32"), "{e}");
    // An element type blockarray does not have.
    edit_metadata(dir.path(), "g/y", |m| {
        m["data_type"] = serde_json::json!("int16");
        m["fill_value"] = serde_json::json!(0);
    });
    let e = from_zarr::<f64>(&dir, "g/y").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Type, "{e}");
    assert!(e.to_string().contains("holds int16, not float64"), "{e}");
    // Writing into an array of another type.
    let ones = BlockArray::<i64>::ones(&[20, 30], [10, 10]).expect("ones");
    let mut store = ZarrStore::new(&dir);
    let e = store.existing("x", &ones).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Type);
    assert!(e.to_string().contains("holds float64, not int64"), "{e}");
}

#[test]
fn corrupt_or_truncated_chunks_name_the_chunk_key() {
    let dir = store_with_x("corrupt.zarr");
    std::fs::write(dir.path().join("x/c/1/2"), b"\x28\xb5\x2f\xfd garbage").expect("corrupt");
    let x = from_zarr::<f64>(&dir, "x").expect("metadata is fine");
    // Chunks that are not corrupt still read.
    assert_eq!(
        x.slice(blockarray::s![..10, ..])
            .expect("slice")
            .compute()
            .expect("first row of chunks")
            .len(),
        300
    );
    let e = x.compute().unwrap_err();
    assert_names(&e, dir.path(), "/x");
    assert!(e.to_string().contains("chunk \"x/c/1/2\""), "{e}");
    // A truncated uncompressed chunk.
    let raw = TempPath::new("truncated.zarr");
    let ones = BlockArray::<i32>::ones(&[8], [4]).expect("ones");
    to_zarr_with(
        &raw,
        &[("r", &ones)],
        &ArrayOptions::new().compressor(Compressor::None),
        &SyncScheduler::new(),
    )
    .expect("raw");
    let chunk = raw.path().join("r/c/1");
    let bytes = std::fs::read(&chunk).expect("chunk");
    std::fs::write(&chunk, &bytes[..7]).expect("truncate");
    let e = from_zarr::<i32>(&raw, "r")
        .expect("open")
        .compute()
        .unwrap_err();
    assert!(e.to_string().contains("chunk \"r/c/1\""), "{e}");
    // A sharded array whose shard index fails its checksum.
    let sh = TempPath::new("shard.zarr");
    let x = BlockArray::<f64>::ones(&[8, 8], [8, 8]).expect("x");
    to_zarr_with(
        &sh,
        &[("s", &x)],
        &ArrayOptions::new().chunks([4, 4]).shards([8, 8]),
        &SyncScheduler::new(),
    )
    .expect("sharded");
    let shard = sh.path().join("s/c/0/0");
    let mut bytes = std::fs::read(&shard).expect("shard");
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    std::fs::write(&shard, bytes).expect("flip a bit of the index");
    let e = from_zarr::<f64>(&sh, "s")
        .expect("open")
        .compute()
        .unwrap_err();
    assert!(e.to_string().contains("chunk \"s/c/0/0\""), "{e}");
    // A bool chunk with a byte that is neither 0 nor 1.
    let b = TempPath::new("bool.zarr");
    let t = BlockArray::<bool>::from_fn(&[4], [4], "t", |_| true).expect("t");
    to_zarr_with(
        &b,
        &[("b", &t)],
        &ArrayOptions::new().compressor(Compressor::None),
        &SyncScheduler::new(),
    )
    .expect("bool");
    std::fs::write(b.path().join("b/c/0"), [1u8, 0, 7, 1]).expect("bad bool");
    let e = from_zarr::<bool>(&b, "b")
        .expect("open")
        .compute()
        .unwrap_err();
    assert!(e.to_string().contains("chunk \"b/c/0\""), "{e}");
}

#[test]
fn bad_options_are_refused_before_anything_is_written() {
    let dir = TempPath::new("options.zarr");
    let x = BlockArray::<f64>::ones(&[10, 10], [5, 5]).expect("x");
    let cases: Vec<(ArrayOptions, ErrorKind, &str)> = vec![
        (
            ArrayOptions::new().chunks([5]),
            ErrorKind::Chunks,
            "chunk shape [5]",
        ),
        (
            ArrayOptions::new().chunks([5, 0]),
            ErrorKind::Chunks,
            "chunk shape [5, 0]",
        ),
        (
            ArrayOptions::new().chunks([5, 5]).shards([7, 10]),
            ErrorKind::Chunks,
            "not a whole number of chunks",
        ),
        (
            ArrayOptions::new().shards([10, 10]),
            ErrorKind::Chunks,
            "inner chunk shape",
        ),
        (
            ArrayOptions::new().transpose([0, 0]),
            ErrorKind::Axis,
            "not a permutation",
        ),
        (
            ArrayOptions::new().compressor(Compressor::Gzip(10)),
            ErrorKind::Unsupported,
            "gzip level 10",
        ),
        (
            ArrayOptions::new().compressor(Compressor::Zstd(23)),
            ErrorKind::Unsupported,
            "zstd level 23",
        ),
        (
            ArrayOptions::new()
                .version(ZarrVersion::V2)
                .chunks([5, 5])
                .shards([10, 10]),
            ErrorKind::Unsupported,
            "sharding needs Zarr v3",
        ),
        (
            ArrayOptions::new()
                .version(ZarrVersion::V2)
                .transpose([1, 0]),
            ErrorKind::Unsupported,
            "transpose codec needs Zarr v3",
        ),
        (
            ArrayOptions::new().dimension_names(["a"]),
            ErrorKind::Axis,
            "1 dimension names for 2 axes",
        ),
    ];
    for (opts, kind, text) in cases {
        let mut store = ZarrStore::new(&dir);
        let e = store.array("x", &x, &opts).unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.to_string().contains(text), "{text}: {e}");
        assert_names(&e, dir.path(), "/x");
        assert!(!dir.path().exists(), "nothing is created for bad options");
    }
}

#[test]
fn existing_arrays_groups_and_paths_through_arrays_are_refused() {
    let dir = store_with_x("exists.zarr");
    let before = common::snapshot(dir.path());
    let x = BlockArray::<f64>::ones(&[20, 30], [10, 10]).expect("x");
    let mut store = ZarrStore::new(&dir);
    let e = store.array("x", &x, &ArrayOptions::new()).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    let e = store.array("g", &x, &ArrayOptions::new()).unwrap_err();
    assert!(e.to_string().contains("is a group"), "{e}");
    let e = store
        .array("x/inner", &x, &ArrayOptions::new())
        .unwrap_err();
    assert!(e.to_string().contains("\"/x\" is an array"), "{e}");
    // The same array twice in one store.
    store.array("new", &x, &ArrayOptions::new()).expect("new");
    let e = store.array("/new/", &x, &ArrayOptions::new()).unwrap_err();
    assert!(e.to_string().contains("more than once"), "{e}");
    drop(store);
    assert_eq!(
        common::snapshot(dir.path()),
        before,
        "nothing was left behind"
    );
}

#[test]
fn a_chunking_that_would_share_a_chunk_is_refused_with_the_rechunk() {
    // dask issue 12583: blocks of 6 over Zarr chunks of 4 — two tasks would write chunk 1.
    let dir = TempPath::new("misaligned.zarr");
    let x = BlockArray::<f64>::ones(&[24, 8], [6, 8]).expect("x");
    let mut store = ZarrStore::new(&dir);
    let e = store
        .array("x", &x, &ArrayOptions::new().chunks([4, 8]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Chunks);
    assert_names(&e, dir.path(), "/x");
    let msg = e.to_string();
    assert!(
        msg.contains("along axis 0") && msg.contains("position 6"),
        "{msg}"
    );
    assert!(msg.contains("12583"), "{msg}");
    assert!(msg.contains("x.rechunk(vec![4, 8])"), "{msg}");
    // The suggested rechunk is accepted, and writes the right thing.
    store
        .array(
            "x",
            &x.rechunk(vec![4, 8]).expect("rechunk"),
            &ArrayOptions::new().chunks([4, 8]),
        )
        .expect("aligned");
    store.run().expect("run");
    assert_eq!(
        from_zarr::<f64>(&dir, "x")
            .expect("x")
            .compute()
            .expect("x")
            .sum(),
        192.0
    );
    // Irregular blocks (a slice) with the default chunks: the refusal comes with the rechunk.
    let y = BlockArray::<f64>::ones(&[30], [10])
        .expect("y")
        .slice(blockarray::s![3..])
        .expect("slice");
    let mut store = ZarrStore::new(&dir);
    let e = store.array("y", &y, &ArrayOptions::new()).unwrap_err();
    assert!(e.to_string().contains("x.rechunk(vec![10])"), "{e}");
    // Sharded: the shard is the unit.
    let z = BlockArray::<f64>::ones(&[16], [4]).expect("z");
    let e = store
        .array("z", &z, &ArrayOptions::new().chunks([4]).shards([8]))
        .unwrap_err();
    assert!(e.to_string().contains("one Zarr shard"), "{e}");
    // A region whose start is not on a chunk boundary: blocks must follow the chunks there.
    let patch = BlockArray::<f64>::zeros(&[10, 8], [5, 8]).expect("patch");
    let e = store
        .update("x", &patch, &UpdateOptions::new().region(vec![2..12, 0..8]))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("ChunkSpec::Explicit(vec![vec![2, 4, 4], vec![8]])"),
        "{e}"
    );
    let fixed = patch
        .rechunk(ChunkSpec::Explicit(vec![vec![2, 4, 4], vec![8]]))
        .expect("rechunk");
    store
        .update("x", &fixed, &UpdateOptions::new().region(vec![2..12, 0..8]))
        .expect("aligned region");
    store.run().expect("run");
    assert_eq!(
        from_zarr::<f64>(&dir, "x")
            .expect("x")
            .compute()
            .expect("x")
            .sum(),
        112.0
    );
    // BlockArray::store straight into a sink is checked too (the ChunkSink::check_chunks hook).
    let sink = Arc::new(
        ZarrSink::<f64>::create(&dir, "w", &[24, 8], &ArrayOptions::new().chunks([4, 8]))
            .expect("sink"),
    );
    let e = x.store(sink).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Chunks);
    assert!(
        common::names(dir.path())
            .iter()
            .all(|n| !n.starts_with('.')),
        "temporaries removed"
    );
    // And a block written by hand across a chunk boundary is refused at write time.
    let sink = ZarrSink::<f64>::create(&dir, "w", &[24, 8], &ArrayOptions::new().chunks([4, 8]))
        .expect("sink");
    let e = sink
        .write_block(&[0, 0], &ArrayD::zeros(IxDyn(&[6, 8])))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Chunks);
}

#[test]
fn regions_and_shapes_that_do_not_fit_are_named() {
    let dir = store_with_x("region.zarr");
    let patch = BlockArray::<f64>::zeros(&[10, 10], [10, 10]).expect("patch");
    let mut store = ZarrStore::new(&dir);
    let e = store
        .update(
            "x",
            &patch,
            &UpdateOptions::new().region(vec![15..25, 0..10]),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Index);
    assert!(
        e.to_string()
            .contains("not inside the array's shape [20, 30]"),
        "{e}"
    );
    let e = store
        .update(
            "x",
            &patch,
            &UpdateOptions::new().region(vec![0..10, 0..20]),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert!(e.to_string().contains("region [0..10, 0..20]"), "{e}");
    let e = store.existing("x", &patch).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert!(e.to_string().contains("(20, 30)"), "{e}");
    let e = store.existing("nope", &patch).unwrap_err();
    assert!(e.to_string().contains("no such array"), "{e}");
    // Nothing staged is left behind by the refusals.
    drop(store);
    assert!(
        common::names(dir.path())
            .iter()
            .all(|n| !n.starts_with('.'))
    );
}

#[test]
fn stores_of_other_shapes_are_named_when_joined() {
    let (a, b) = (TempPath::new("join-a"), TempPath::new("join-b"));
    to_zarr(&a, &[("v", &BlockArray::<f64>::ones(&[4, 3], 2).unwrap())]).expect("a");
    to_zarr(&b, &[("v", &BlockArray::<f64>::ones(&[5, 3], 2).unwrap())]).expect("b");
    let stores = [a.path(), b.path()];
    let err = stack_zarr::<f64, _>(&stores, "v", 0, &ReadOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Shape);
    assert_names(&err, b.path(), "v");
    assert!(
        err.to_string().contains(&a.path().display().to_string()),
        "{err}"
    );
    let c = concatenate_zarr::<f64, _>(&stores, "v", 0, &ReadOptions::new()).expect("cat");
    assert_eq!(c.shape(), [9, 3]);
    let err = concatenate_zarr::<f64, _>(&stores, "v", 1, &ReadOptions::new()).unwrap_err();
    assert!(err.to_string().contains("axis 1"), "{err}");
    let none: [&Path; 0] = [];
    assert!(stack_zarr::<f64, _>(&none, "v", 0, &ReadOptions::new()).is_err());
    let err = concatenate_zarr::<f64, _>(&none, "v", 0, &ReadOptions::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("no Zarr stores given to read array \"v\""),
        "{err}"
    );
}

/// A scheduler that says its runs are spread over two processes (and runs them in one).
struct TwoProcesses(SyncScheduler);

impl dag_core::Scheduler for TwoProcesses {
    fn name(&self) -> &str {
        "two-processes"
    }
    fn execute(
        &self,
        plan: &dag_core::Plan,
        callbacks: &dyn dag_core::Callbacks,
    ) -> Result<dag_core::Execution, dag_core::Error> {
        self.0.execute(plan, callbacks)
    }
    fn processes(&self) -> usize {
        2
    }
}

/// Zarr stores under a distributed scheduler are refused (every process made its own new
/// array and renamed it into place in turn: the last, empty, won), and nothing is left behind.
#[test]
fn zarr_stores_over_several_processes_are_refused() {
    let dir = TempPath::new("mpi.zarr");
    let x = BlockArray::<f64>::ones(&[10], [5]).expect("x");
    let e = blockarray_zarr::to_zarr_with(
        &dir,
        &[("x", &x)],
        &blockarray_zarr::ArrayOptions::new(),
        &TwoProcesses(SyncScheduler::new()),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("2 processes"), "{e}");
    let left: Vec<String> = common::names(dir.path())
        .into_iter()
        .filter(|n| !n.is_empty() && n != "zarr.json")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // A sink made directly (in every process of an SPMD program, each its own) is refused
    // too, with the same error, and leaves nothing.
    let sink = ZarrSink::<f64>::create(&dir, "y", &[10], &blockarray_zarr::ArrayOptions::new())
        .expect("sink");
    let y = BlockArray::<f64>::ones(&[10], [10]).expect("y");
    let e = y
        .store_with(Arc::new(sink), &TwoProcesses(SyncScheduler::new()))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("2 processes"), "{e}");
    assert!(e.to_string().contains("\"/y\""), "{e}");
    let left: Vec<String> = common::names(dir.path())
        .into_iter()
        .filter(|n| !n.is_empty() && n != "zarr.json")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
