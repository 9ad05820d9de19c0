//! Round trips through Zarr stores against the in-memory ndarray: random shapes, blockings,
//! stored chunkings, shards, codecs, formats and read chunkings, with both schedulers; every
//! element type; region updates, staged and in place; reading only what a slice needs; keys
//! that follow the contents.

mod common;

use blockarray::{BlockArray, ChunkSink, ChunkSpec, s};
use blockarray_zarr::{
    ArrayOptions, BloscCompressor, BloscShuffle, Compressor, Endian, ReadOptions, UpdateOptions,
    ZarrElement, ZarrSink, ZarrStore, ZarrVersion, array_info, from_zarr, from_zarr_with,
    to_zarr_with,
};
use common::TempPath;
use dag_core::Scheduler;
use ndarray::{ArrayD, IxDyn, SliceInfoElem};
use num_complex::Complex;
use proptest::prelude::*;
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;
use std::ops::Range;
use std::sync::Arc;

fn schedulers() -> Vec<Box<dyn Scheduler>> {
    vec![
        Box::new(SyncScheduler::new()),
        Box::new(
            ThreadedScheduler::builder()
                .threads(4)
                .build()
                .expect("4 threads"),
        ),
    ]
}

/// A deterministic, not very compressible value for a flat index.
fn value(i: usize) -> f64 {
    let h = (i as u64 ^ 0x9E37_79B9_7F4A_7C15).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (h >> 11) as f64 / (1u64 << 53) as f64 * 100.0 - 50.0
}

fn reference(shape: &[usize]) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(value).collect()).expect("sizes")
}

fn compressor(k: u8) -> Compressor {
    match k {
        0 => Compressor::None,
        1 => Compressor::Zstd(1),
        2 => Compressor::Gzip(2),
        _ => Compressor::Blosc {
            cname: BloscCompressor::Lz4,
            clevel: 3,
            shuffle: BloscShuffle::Shuffle,
        },
    }
}

#[derive(Clone, Debug)]
struct Case {
    shape: Vec<usize>,
    /// The stored chunk shape.
    chunk: Vec<usize>,
    /// Shard shape in chunks, when sharded.
    shard: Option<Vec<usize>>,
    /// Block shape in units of the write unit (chunk or shard).
    block: Vec<usize>,
    read_chunks: Option<Vec<usize>>,
    compressor: u8,
    v2: bool,
    transpose: bool,
    big: bool,
    step: isize,
    threaded: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=3)
        .prop_flat_map(|nd| {
            // Few enough chunks per array that a case stays quick (one file per chunk).
            let min_chunk = if nd == 3 { 2 } else { 1 };
            (
                prop::collection::vec(0usize..=11, nd),
                prop::collection::vec(min_chunk..=4usize, nd),
                prop::option::of(prop::collection::vec(1usize..=2, nd)),
                prop::collection::vec(1usize..=3, nd),
                prop::option::of(prop::collection::vec(1usize..=7, nd)),
                0u8..4,
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                prop_oneof![-3isize..=-1, 1isize..=3],
                any::<bool>(),
            )
        })
        .prop_map(
            |(
                shape,
                chunk,
                shard,
                block,
                read_chunks,
                compressor,
                v2,
                transpose,
                big,
                step,
                threaded,
            )| {
                Case {
                    shape,
                    chunk,
                    shard,
                    block,
                    read_chunks,
                    compressor,
                    v2,
                    transpose,
                    big,
                    step,
                    threaded,
                }
            },
        )
}

fn run_case(c: &Case) -> Result<(), TestCaseError> {
    let scheds = schedulers();
    let sched = &*scheds[usize::from(c.threaded)];
    let expected = reference(&c.shape);
    let unit: Vec<usize> = match &c.shard {
        Some(s) => c.chunk.iter().zip(s).map(|(c, s)| c * s).collect(),
        None => c.chunk.clone(),
    };
    let blocks: Vec<usize> = unit.iter().zip(&c.block).map(|(u, b)| u * b).collect();
    let x = BlockArray::from_array(expected.clone(), blocks).expect("from_array");
    let dir = TempPath::new("roundtrip.zarr");
    let v2 = c.v2 && c.shard.is_none();
    let mut opts = ArrayOptions::new()
        .chunks(c.chunk.clone())
        .compressor(compressor(c.compressor));
    if let Some(s) = &c.shard {
        opts = opts.shards(unit.clone());
        let _ = s;
    }
    if v2 {
        opts = opts.version(ZarrVersion::V2);
    } else if c.transpose {
        opts = opts.transpose((0..c.shape.len()).rev().collect::<Vec<_>>());
    }
    if c.big {
        opts = opts.endian(Endian::Big);
    }
    to_zarr_with(&dir, &[("data/x", &x)], &opts, sched).expect("store");
    let info = array_info(&dir, "data/x").expect("info");
    prop_assert_eq!(info.zarr_format, if v2 { 2 } else { 3 });
    let clamp = |s: &[usize]| -> Vec<usize> {
        s.iter()
            .zip(&c.shape)
            .map(|(&s, &n)| s.min(n).max(1))
            .collect()
    };
    if c.shard.is_none() {
        prop_assert_eq!(&info.chunks, &clamp(&c.chunk));
    } else {
        prop_assert_eq!(info.inner_chunks.as_ref(), Some(&clamp(&c.chunk)));
    }
    let mut ropts = ReadOptions::new();
    if let Some(ch) = &c.read_chunks {
        ropts = ropts.chunks(ch.clone());
    }
    let y: BlockArray<f64> = from_zarr_with(&dir, "data/x", &ropts).expect("open");
    prop_assert_eq!(y.shape(), c.shape.as_slice());
    let empty = c.shape.contains(&0);
    if c.read_chunks.is_none() && !empty {
        // The array follows the stored chunks (whole shards: these are small).
        let want: Vec<usize> = info
            .chunks
            .iter()
            .zip(&c.shape)
            .map(|(&s, &n)| s.min(n))
            .collect();
        prop_assert_eq!(y.chunks().max_block_shape(), want);
    }
    let got = y.compute_with(sched).expect("compute");
    prop_assert_eq!(&got, &expected);
    if !empty {
        let sum = y
            .sum(None, false)
            .expect("sum")
            .compute_with(sched)
            .expect("sum runs");
        let want = expected.sum();
        prop_assert!((sum.into_iter().next().unwrap() - want).abs() < 1e-9 * (1.0 + want.abs()));
        // A strided slice along every axis: only the chunks holding selected elements.
        let mut slices = Vec::new();
        let mut nd_slices = Vec::new();
        for (k, &n) in c.shape.iter().enumerate() {
            let step = if k == 0 { c.step } else { 2 };
            // NumPy's `1::k`, or `::-k` (the same in ndarray's notation).
            let start = if step > 0 && n > 2 { 1 } else { 0 };
            slices.push(blockarray::SliceArg::Range {
                start: (step > 0).then_some(start as isize),
                stop: None,
                step,
            });
            nd_slices.push(SliceInfoElem::Slice {
                start: start as isize,
                end: None,
                step,
            });
        }
        let sliced = y
            .slice(&slices)
            .expect("slice")
            .compute_with(sched)
            .expect("runs");
        prop_assert_eq!(sliced, expected.slice(nd_slices.as_slice()).to_owned());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn f64_round_trips_match_ndarray(c in case()) {
        run_case(&c)?;
    }
}

fn round_trip_type<T: ZarrElement>(values: Vec<T>, shape: &[usize]) {
    let expected = ArrayD::from_shape_vec(IxDyn(shape), values).expect("sizes");
    let x = BlockArray::from_array(expected.clone(), [2, 3]).expect("array");
    for (k, sched) in schedulers().iter().enumerate() {
        for version in [ZarrVersion::V2, ZarrVersion::V3] {
            let dir = TempPath::new("types.zarr");
            let opts = ArrayOptions::new()
                .chunks([2, 3])
                .version(version)
                .compressor(compressor(
                    k as u8 * 2 + u8::from(version == ZarrVersion::V3),
                ));
            to_zarr_with(&dir, &[("v", &x)], &opts, &**sched).expect("store");
            let info = array_info(&dir, "v").expect("info");
            assert_eq!(info.dtype, T::DTYPE, "{info:?}");
            for chunks in [None, Some(vec![3, 2])] {
                let mut ro = ReadOptions::new();
                if let Some(c) = chunks {
                    ro = ro.chunks(c);
                }
                let back: BlockArray<T> = from_zarr_with(&dir, "v", &ro).expect("open");
                assert_eq!(back.compute_with(&**sched).expect("compute"), expected);
            }
        }
    }
}

#[test]
fn every_element_type_round_trips() {
    let shape = [7, 5];
    let n = 35;
    round_trip_type(
        (0..n).map(|i| value(i) as f32).collect::<Vec<f32>>(),
        &shape,
    );
    round_trip_type((0..n).map(value).collect::<Vec<f64>>(), &shape);
    round_trip_type(
        (0..n)
            .map(|i| (value(i) * 1e6) as i32)
            .collect::<Vec<i32>>(),
        &shape,
    );
    round_trip_type(
        (0..n)
            .map(|i| (value(i) * 1e15) as i64)
            .collect::<Vec<i64>>(),
        &shape,
    );
    round_trip_type(
        (0..n).map(|i| (i * 37 % 256) as u8).collect::<Vec<u8>>(),
        &shape,
    );
    round_trip_type(
        (0..n)
            .map(|i| (i as i64 * 7 - 128) as i8)
            .collect::<Vec<i8>>(),
        &shape,
    );
    round_trip_type(
        (0..n)
            .map(|i| (i as i64 * 1871 - 32768) as i16)
            .collect::<Vec<i16>>(),
        &shape,
    );
    round_trip_type(
        (0..n)
            .map(|i| (i * 1871 % 65536) as u16)
            .collect::<Vec<u16>>(),
        &shape,
    );
    round_trip_type(
        (0..n)
            .map(|i| (i as u32).wrapping_mul(122_713_351))
            .collect::<Vec<u32>>(),
        &shape,
    );
    round_trip_type(
        (0..n)
            .map(|i| u64::MAX - i as u64 * 1_000_003)
            .collect::<Vec<u64>>(),
        &shape,
    );
    round_trip_type(
        (0..n).map(|i| value(i) > 0.0).collect::<Vec<bool>>(),
        &shape,
    );
    round_trip_type(
        (0..n)
            .map(|i| Complex::new(value(i) as f32, -value(i + 1) as f32))
            .collect::<Vec<_>>(),
        &shape,
    );
    round_trip_type(
        (0..n)
            .map(|i| Complex::new(value(i), value(i + 7)))
            .collect::<Vec<_>>(),
        &shape,
    );
}

#[test]
fn scalars_and_empty_arrays_round_trip() {
    let dir = TempPath::new("scalar.zarr");
    let s = BlockArray::from_array(ArrayD::from_elem(IxDyn(&[]), 4.5f64), Vec::<usize>::new())
        .expect("scalar");
    let e = BlockArray::<f64>::zeros(&[0, 3], [1, 3]).expect("empty");
    let total = BlockArray::<i64>::arange(0, 10, 1, 3)
        .expect("arange")
        .sum(None, false)
        .expect("0-d sum");
    let mut store = ZarrStore::new(&dir);
    store
        .array("s", &s, &ArrayOptions::new())
        .expect("scalar array")
        .array("e", &e, &ArrayOptions::new())
        .expect("empty array")
        .array(
            "total",
            &total,
            &ArrayOptions::new().version(ZarrVersion::V2),
        )
        .expect("v2 scalar");
    store.run().expect("run");
    let s2 = from_zarr::<f64>(&dir, "s").expect("open scalar");
    assert_eq!(s2.shape(), &[] as &[usize]);
    assert_eq!(s2.compute().expect("compute")[IxDyn(&[])], 4.5);
    let e2 = from_zarr::<f64>(&dir, "e").expect("open empty");
    assert_eq!(e2.shape(), &[0, 3]);
    assert_eq!(e2.compute().expect("compute").len(), 0);
    let t = from_zarr::<i64>(&dir, "total").expect("open total");
    assert_eq!(t.compute().expect("total")[IxDyn(&[])], 45);
}

/// The block lengths along one axis that tile `r` without cutting a chunk of length `c`.
fn aligned(r: &Range<usize>, c: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = r.start;
    while pos < r.end {
        let next = ((pos / c + 1) * c).min(r.end);
        out.push(next - pos);
        pos = next;
    }
    if out.is_empty() {
        out.push(0);
    }
    out
}

#[test]
fn region_updates_match_ndarray_staged_and_in_place() {
    let base = reference(&[13, 17]);
    let regions: [[Range<usize>; 2]; 5] = [
        [0..13, 0..17],
        [2..11, 3..16],
        [4..8, 5..10],
        [0..1, 16..17],
        [5..5, 0..17],
    ];
    for sharded in [false, true] {
        for (k, region) in regions.iter().enumerate() {
            for in_place in [false, true] {
                let sched = &*schedulers()[k % 2];
                let dir = TempPath::new("region.zarr");
                let (chunk, unit): (Vec<usize>, Vec<usize>) = if sharded {
                    (vec![2, 3], vec![4, 6])
                } else {
                    (vec![4, 5], vec![4, 5])
                };
                let mut opts = ArrayOptions::new().chunks(chunk);
                if sharded {
                    opts = opts.shards(unit.clone());
                }
                let x = BlockArray::from_array(base.clone(), unit.clone()).expect("base");
                to_zarr_with(&dir, &[("a", &x)], &opts, sched).expect("base store");
                let shape: Vec<usize> = region.iter().map(Range::len).collect();
                let patch: ArrayD<f64> =
                    ArrayD::from_shape_fn(IxDyn(&shape), |i| -1000.0 - (i[0] * 100 + i[1]) as f64);
                let blocks = ChunkSpec::Explicit(vec![
                    aligned(&region[0], unit[0]),
                    aligned(&region[1], unit[1]),
                ]);
                let p = BlockArray::from_array(patch.clone(), blocks).expect("patch");
                let mut store = ZarrStore::new(&dir);
                store
                    .update(
                        "a",
                        &p,
                        &UpdateOptions::new()
                            .region(region.to_vec())
                            .in_place(in_place),
                    )
                    .expect("update");
                store.run_with(sched, &dag_core::NoCallbacks).expect("run");
                let mut want = base.clone();
                want.slice_mut(ndarray::s![region[0].clone(), region[1].clone()])
                    .assign(&patch);
                let got = from_zarr::<f64>(&dir, "a")
                    .expect("open")
                    .compute()
                    .expect("read");
                assert_eq!(
                    got, want,
                    "region {region:?}, sharded {sharded}, in place {in_place}"
                );
                // Nothing hidden is left beside the array.
                assert_eq!(
                    common::names(dir.path())
                        .iter()
                        .filter(|n| n.starts_with('.'))
                        .count(),
                    0
                );
            }
        }
    }
}

#[test]
fn an_update_can_read_the_array_it_replaces() {
    // x[::-1] stored into x: staged, every task reads the old chunks.
    let dir = TempPath::new("reverse.zarr");
    let data = reference(&[40]);
    let x = BlockArray::from_array(data.clone(), [10]).expect("x");
    to_zarr_with(
        &dir,
        &[("x", &x)],
        &ArrayOptions::new(),
        &SyncScheduler::new(),
    )
    .expect("x");
    for sched in schedulers() {
        let before = from_zarr::<f64>(&dir, "x")
            .expect("x")
            .compute()
            .expect("before");
        let y = from_zarr::<f64>(&dir, "x").expect("x");
        let rev = y.slice(s![..;-1]).expect("reverse");
        let mut store = ZarrStore::new(&dir);
        store.existing("x", &rev).expect("update");
        store
            .run_with(&*sched, &dag_core::NoCallbacks)
            .expect("run");
        let after = from_zarr::<f64>(&dir, "x")
            .expect("x")
            .compute()
            .expect("after");
        let mut want = before.clone();
        want.invert_axis(ndarray::Axis(0));
        assert_eq!(after, want);
    }
}

#[test]
fn read_and_write_the_same_store_in_one_computation() {
    let dir = TempPath::new("same.zarr");
    let x = BlockArray::<f64>::from_fn(&[64, 48], [16, 16], "v", |i| value(i[0] * 48 + i[1]))
        .expect("x");
    to_zarr_with(
        &dir,
        &[("x", &x)],
        &ArrayOptions::new(),
        &SyncScheduler::new(),
    )
    .expect("write x");
    let y = from_zarr::<f64>(&dir, "x").expect("read x");
    let doubled = &y * 2.0;
    let mut store = ZarrStore::new(&dir);
    store
        .array(
            "y",
            &doubled,
            &ArrayOptions::new().compressor(Compressor::Gzip(1)),
        )
        .expect("add y");
    let total = store.computation().add(&y.sum(None, false).expect("sum"));
    let mut results = store
        .run_with(
            &ThreadedScheduler::builder().threads(3).build().expect("3"),
            &dag_core::NoCallbacks,
        )
        .expect("run")
        .0;
    let expected = x.compute().expect("x");
    let got_total = results
        .take(total)
        .expect("sum")
        .into_iter()
        .next()
        .unwrap();
    assert!((got_total - expected.sum()).abs() < 1e-9);
    let back = from_zarr::<f64>(&dir, "y")
        .expect("read y")
        .compute()
        .expect("y");
    assert_eq!(back, &expected * 2.0);
}

#[test]
fn unwritten_chunks_read_as_the_fill_value() {
    let dir = TempPath::new("fill.zarr");
    let sink = ZarrSink::<f64>::create(
        &dir,
        "sparse",
        &[10, 10],
        &ArrayOptions::new().chunks([5, 5]),
    )
    .expect("sink");
    let block = ArrayD::from_elem(IxDyn(&[5, 5]), 3.0);
    ChunkSink::write_block(&sink, &[5, 0], &block).expect("one block");
    // A block of zeros (the fill value) stores no chunk at all.
    ChunkSink::write_block(&sink, &[0, 5], &ArrayD::zeros(IxDyn(&[5, 5]))).expect("zeros");
    sink.commit().expect("commit");
    let chunks: Vec<String> = common::names(dir.path())
        .into_iter()
        .filter(|n| n.starts_with("sparse/c/") && !n.ends_with('/'))
        .collect();
    assert_eq!(chunks, ["sparse/c/1/0"]);
    let y = from_zarr_with::<f64>(&dir, "sparse", &ReadOptions::new().chunks([10, 10]))
        .expect("open")
        .compute()
        .expect("read");
    assert_eq!(y.sum(), 75.0);
    assert_eq!(y[[7, 2]], 3.0);
    assert_eq!(y[[2, 2]], 0.0);
}

/// An array's edge chunk is stored whole; what lies past the array's end shows when the array
/// grows (zarr-python's `resize` only rewrites the metadata), and must be the fill value.
#[test]
fn edge_chunks_written_into_an_existing_array_are_padded_with_its_fill_value() {
    let dir = TempPath::new("edgefill.zarr");
    let meta = dir.path().join("x/zarr.json");
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&meta).expect("read meta")).expect("json");
        f(&mut m);
        std::fs::write(&meta, serde_json::to_vec(&m).expect("json")).expect("write meta");
    };
    let x = BlockArray::<f64>::from_fn(&[5], [2], "i", |i| i[0] as f64 + 1.0).expect("x");
    for in_place in [true, false] {
        let zeros = BlockArray::<f64>::zeros(&[5], [5]).expect("zeros");
        let options = ArrayOptions::new().chunks([2]).overwrite(true);
        to_zarr_with(&dir, &[("x", &zeros)], &options, &SyncScheduler::new()).expect("create");
        edit(&|m| m["fill_value"] = serde_json::json!(-1.5));
        let sink = Arc::new(
            ZarrSink::<f64>::open(&dir, "x", &UpdateOptions::new().in_place(in_place))
                .expect("sink"),
        );
        x.store_with(sink.clone(), &SyncScheduler::new())
            .expect("store");
        sink.commit().expect("commit");
        edit(&|m| m["shape"] = serde_json::json!([6]));
        let grown = from_zarr::<f64>(&dir, "x")
            .expect("x")
            .compute()
            .expect("x");
        assert_eq!(
            grown.into_raw_vec_and_offset().0,
            [1.0, 2.0, 3.0, 4.0, 5.0, -1.5],
            "in place: {in_place}"
        );
    }
}

#[test]
fn only_the_chunks_a_slice_needs_are_read() {
    let dir = TempPath::new("lazy.zarr");
    let x = BlockArray::<f64>::ones(&[100, 100], [10, 10]).expect("x");
    to_zarr_with(
        &dir,
        &[("x", &x)],
        &ArrayOptions::new(),
        &SyncScheduler::new(),
    )
    .expect("x");
    let y = from_zarr::<f64>(&dir, "x").expect("y");
    let part = y.slice(s![5..15, 95..]).expect("slice");
    let (graph, _) = part.lowered(None).expect("lower");
    let reads = graph
        .keys()
        .iter()
        .filter(|k| k.to_string().contains("zarr"))
        .count();
    assert_eq!(reads, 2, "{graph}");
    assert_eq!(part.compute().expect("part").sum(), 50.0);
    // A strided slice inside one block reads only the chunks holding its elements: break
    // every other chunk of row block 0 and read columns 0, 20, 40, … (chunks 0, 2, 4, …).
    let y = from_zarr_with::<f64>(&dir, "x", &ReadOptions::new().chunks([10, 100])).expect("y");
    for j in (1..10).step_by(2) {
        std::fs::write(dir.path().join(format!("x/c/0/{j}")), b"not zstd").expect("break");
    }
    let picked = y
        .slice(s![..10, ..;20])
        .expect("strided")
        .compute()
        .expect("reads");
    assert_eq!(picked.shape(), &[10, 5]);
    assert_eq!(picked.sum(), 50.0);
    // The broken chunks are really broken.
    let e = y
        .slice(s![..10, 10..11])
        .expect("slice")
        .compute()
        .unwrap_err();
    assert!(e.to_string().contains("c/0/1"), "{e}");
}

#[test]
fn keys_follow_the_contents() {
    let dir = TempPath::new("keys.zarr");
    let x = BlockArray::<f64>::ones(&[20, 20], [10, 10]).expect("x");
    to_zarr_with(
        &dir,
        &[("x", &x)],
        &ArrayOptions::new(),
        &SyncScheduler::new(),
    )
    .expect("x");
    let a = from_zarr::<f64>(&dir, "x").expect("a");
    let b = from_zarr::<f64>(&dir, "x").expect("b");
    assert_eq!(a.name(), b.name(), "same contents, same key");
    // Rewriting one chunk (a staged region update) changes the key.
    let patch = BlockArray::<f64>::zeros(&[10, 10], [10, 10]).expect("patch");
    let mut store = ZarrStore::new(&dir);
    store
        .update(
            "x",
            &(&patch + 5.0),
            &UpdateOptions::new().region(vec![10..20, 0..10]),
        )
        .expect("update");
    store.run().expect("run");
    let c = from_zarr::<f64>(&dir, "x").expect("c");
    assert_ne!(a.name(), c.name(), "new contents, new key");
    assert_eq!(
        c.sum(None, false).expect("sum").compute().expect("sum")[IxDyn(&[])],
        800.0
    );
    // The same data under another array name is another source.
    to_zarr_with(
        &dir,
        &[("x2", &x)],
        &ArrayOptions::new(),
        &SyncScheduler::new(),
    )
    .expect("x2");
    assert_ne!(a.name(), from_zarr::<f64>(&dir, "x2").expect("x2").name());
}

#[test]
fn sharded_arrays_read_in_shards_or_inner_chunks() {
    let dir = TempPath::new("shards.zarr");
    let x = BlockArray::<f32>::from_fn(&[40, 30], [20, 30], "v", |i| (i[0] * 30 + i[1]) as f32)
        .expect("x");
    let opts = ArrayOptions::new().chunks([5, 10]).shards([20, 30]);
    to_zarr_with(&dir, &[("x", &x)], &opts, &SyncScheduler::new()).expect("x");
    let info = array_info(&dir, "x").expect("info");
    assert_eq!(info.chunks, [20, 30]);
    assert_eq!(info.inner_chunks, Some(vec![5, 10]));
    assert_eq!(
        info.codecs[0],
        "sharding_indexed[bytes(little), zstd(level=1, checksum=false)]"
    );
    let y = from_zarr::<f32>(&dir, "x").expect("y");
    assert_eq!(
        y.chunks().max_block_shape(),
        [20, 30],
        "small shards are read whole"
    );
    assert_eq!(y.compute().expect("y"), x.compute().expect("x"));
    // One inner chunk of a shard, through the shard index.
    let one = y
        .slice(s![25..30, 10..20])
        .expect("slice")
        .compute()
        .expect("one");
    assert_eq!(one[[0, 0]], (25 * 30 + 10) as f32);
    // Two shard files, one per row of shards.
    let files: Vec<String> = common::names(dir.path())
        .into_iter()
        .filter(|n| n.starts_with("x/c/") && !n.ends_with('/'))
        .collect();
    assert_eq!(files, ["x/c/0/0", "x/c/1/0"]);
}

#[test]
fn a_store_through_block_array_store_commits_the_sink() {
    let dir = TempPath::new("direct.zarr");
    let x = BlockArray::<i32>::from_fn(&[12, 9], [4, 3], "ij", |i| (i[0] * 10 + i[1]) as i32)
        .expect("x");
    let sink = Arc::new(
        ZarrSink::<i32>::create(&dir, "g/x", x.shape(), &ArrayOptions::new().chunks([4, 3]))
            .expect("sink"),
    );
    assert!(sink.is_staged());
    x.store(sink).expect("store");
    assert_eq!(
        from_zarr::<i32>(&dir, "g/x")
            .expect("x")
            .compute()
            .expect("x"),
        x.compute().expect("x")
    );
    // The group on the way got group metadata.
    assert!(dir.path().join("g/zarr.json").is_file());
    assert!(dir.path().join("zarr.json").is_file());
}

#[test]
fn transpose_big_endian_and_v2_metadata_are_what_they_say() {
    let dir = TempPath::new("meta.zarr");
    let x = BlockArray::<i64>::arange(0, 24, 1, 6)
        .expect("arange")
        .reshape(&[4, 6])
        .expect("reshape")
        .rechunk(vec![2, 3])
        .expect("rechunk");
    let mut store = ZarrStore::new(&dir);
    store
        .array(
            "t",
            &x,
            &ArrayOptions::new()
                .transpose([1, 0])
                .endian(Endian::Big)
                .compressor(Compressor::None)
                .dimension_names(["y", "x"]),
        )
        .expect("t");
    store.run().expect("run");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("t/zarr.json")).expect("meta"))
            .expect("json");
    assert_eq!(meta["dimension_names"], serde_json::json!(["y", "x"]));
    assert_eq!(meta["codecs"][0]["name"], "transpose");
    assert_eq!(meta["codecs"][1]["configuration"]["endian"], "big");
    // Chunk (0, 0) holds 0 1 2 / 6 7 8, stored transposed and big-endian: 0, 6, 1, 7, 2, 8.
    let raw = std::fs::read(dir.path().join("t/c/0/0")).expect("chunk");
    let stored: Vec<i64> = raw
        .chunks_exact(8)
        .map(|b| i64::from_be_bytes(b.try_into().expect("8")))
        .collect();
    assert_eq!(stored, [0, 6, 1, 7, 2, 8]);
    assert_eq!(
        from_zarr::<i64>(&dir, "t")
            .expect("t")
            .compute()
            .expect("t"),
        x.compute().expect("x")
    );
    // Zarr v2 with the xarray dimension attribute.
    let dir2 = TempPath::new("meta-v2.zarr");
    let mut store = ZarrStore::new(&dir2);
    store
        .array(
            "g/t",
            &x,
            &ArrayOptions::new()
                .version(ZarrVersion::V2)
                .dimension_names(["y", "x"]),
        )
        .expect("t");
    store.run().expect("run");
    let attrs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir2.path().join("g/t/.zattrs")).expect("attrs"))
            .expect("json");
    assert_eq!(attrs["_ARRAY_DIMENSIONS"], serde_json::json!(["y", "x"]));
    assert!(dir2.path().join("g/.zgroup").is_file() && dir2.path().join(".zgroup").is_file());
    assert!(dir2.path().join("g/t/1.1").is_file());
}

#[test]
fn plain_and_zstd_chunks_are_decoded_straight_into_blocks() {
    use blockarray_zarr::ZarrSource;
    let dir = TempPath::new("direct.zarr");
    let x = BlockArray::<f64>::from_fn(&[30, 20], [10, 10], "v", |i| value(i[0] * 20 + i[1]))
        .expect("x");
    let cases = [
        ("zstd", ArrayOptions::new(), true),
        (
            "raw",
            ArrayOptions::new().compressor(Compressor::None),
            true,
        ),
        ("v2", ArrayOptions::new().version(ZarrVersion::V2), true),
        (
            "gzip",
            ArrayOptions::new().compressor(Compressor::Gzip(1)),
            false,
        ),
        ("big", ArrayOptions::new().endian(Endian::Big), false),
        ("transposed", ArrayOptions::new().transpose([1, 0]), false),
        (
            "sharded",
            ArrayOptions::new().chunks([5, 5]).shards([10, 10]),
            false,
        ),
    ];
    let mut store = ZarrStore::new(&dir);
    for (name, opts, _) in &cases {
        store.array(name, &x, opts).expect("array");
    }
    store.run().expect("run");
    let want = x.compute().expect("x");
    for (name, _, direct) in &cases {
        let src = ZarrSource::<f64>::open(&dir, name).expect("open");
        assert_eq!(src.reads_directly(), *direct, "{name}");
        // Whole chunks (direct where possible), chunks cut by blocks, and a strided read.
        for chunks in [vec![10, 10], vec![7, 20]] {
            let y = from_zarr_with::<f64>(&dir, name, &ReadOptions::new().chunks(chunks))
                .expect("open");
            assert_eq!(y.compute().expect("read"), want, "{name}");
        }
    }
    // bool is never read directly: its bytes are checked on the way in.
    assert!(!ZarrSource::<bool>::open(&dir, "zstd").is_ok_and(|s| s.reads_directly()));
}

#[test]
fn work_shared_by_the_stored_arrays_is_done_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let dir = TempPath::new("shared.zarr");
    let x = BlockArray::<f64>::from_fn(&[40, 30], [10, 15], "counted", |i| {
        CALLS.fetch_add(1, Ordering::Relaxed);
        (i[0] * 30 + i[1]) as f64
    })
    .expect("x");
    let y = (&x * 2.0).rechunk(vec![20, 30]).expect("y");
    let mut store = ZarrStore::new(&dir);
    store
        .array("x", &x, &ArrayOptions::new())
        .expect("x")
        .array("y", &y, &ArrayOptions::new().version(ZarrVersion::V2))
        .expect("y");
    let total = store.computation().add(&x.sum(None, false).expect("sum"));
    let mut out = store.run().expect("run");
    assert_eq!(
        CALLS.load(Ordering::Relaxed),
        1200,
        "each element generated once"
    );
    assert_eq!(
        out.take(total).expect("sum")[IxDyn(&[])],
        (0..1200).sum::<usize>() as f64
    );
    let back = from_zarr::<f64>(&dir, "y")
        .expect("y")
        .compute()
        .expect("y");
    assert_eq!(back, x.compute().expect("x") * 2.0);
}

#[test]
fn an_array_at_the_root_of_its_store() {
    let parent = TempPath::new("root-parent");
    std::fs::create_dir(&parent).expect("parent");
    let dir = parent.path().join("root.zarr");
    let x =
        BlockArray::<i32>::from_fn(&[6, 4], [3, 2], "v", |i| (i[0] * 4 + i[1]) as i32).expect("x");
    to_zarr_with(
        &dir,
        &[("/", &x)],
        &ArrayOptions::new(),
        &SyncScheduler::new(),
    )
    .expect("root");
    assert!(dir.join("zarr.json").is_file());
    assert_eq!(
        from_zarr::<i32>(&dir, "")
            .expect("root")
            .compute()
            .expect("x"),
        x.compute().expect("x")
    );
    // Replaced whole, and only on request.
    let y = (&x + 100).rechunk(vec![6, 4]).expect("y");
    assert!(
        to_zarr_with(
            &dir,
            &[("/", &y)],
            &ArrayOptions::new(),
            &SyncScheduler::new()
        )
        .is_err()
    );
    to_zarr_with(
        &dir,
        &[("/", &y)],
        &ArrayOptions::new().overwrite(true),
        &SyncScheduler::new(),
    )
    .expect("overwrite the root");
    assert_eq!(
        from_zarr::<i32>(&dir, "/")
            .expect("root")
            .compute()
            .expect("y"),
        y.compute().expect("y")
    );
    assert_eq!(
        common::names(parent.path())
            .iter()
            .filter(|n| n.starts_with('.'))
            .count(),
        0
    );
    // Into an existing empty directory: the array takes its place.
    let empty = parent.path().join("empty.zarr");
    std::fs::create_dir(&empty).expect("empty");
    to_zarr_with(
        &empty,
        &[("/", &x)],
        &ArrayOptions::new(),
        &SyncScheduler::new(),
    )
    .expect("an empty directory is free");
    assert_eq!(
        from_zarr::<i32>(&empty, "/")
            .expect("root")
            .compute()
            .expect("x"),
        x.compute().expect("x")
    );
}

/// A sink that refuses to commit: the sinks of the run committed before it are rolled back.
struct RefusesToCommit(Vec<usize>);

impl ChunkSink<f64> for RefusesToCommit {
    fn shape(&self) -> Vec<usize> {
        self.0.clone()
    }
    fn write_block(&self, _: &[usize], _: &ArrayD<f64>) -> blockarray::Result<()> {
        Ok(())
    }
    fn commit(&self) -> blockarray::Result<()> {
        Err(blockarray::Error::io("refuses to commit"))
    }
}

/// Hidden directories (temporaries, staged chunks, arrays kept aside) left in `dir`.
fn hidden(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// All of a run's sinks commit, or none: a Zarr array replaced or updated by a run whose
/// next sink refuses to commit is as it was, byte for byte, and nothing is left behind.
#[test]
fn a_refused_commit_rolls_back_replaced_and_updated_arrays() {
    let dir = TempPath::new("rollback.zarr");
    let old = BlockArray::<f64>::from_fn(&[6, 4], [3, 2], "ij", |i| (i[0] * 4 + i[1]) as f64)
        .expect("old");
    let opts = ArrayOptions::new().chunks([3, 2]);
    to_zarr_with(
        &dir,
        &[("a", &old), ("b", &old)],
        &opts,
        &SyncScheduler::new(),
    )
    .expect("write");
    let want = old.compute().expect("old");
    let new = &old * -1.0;
    let refuse = Arc::new(RefusesToCommit(vec![6, 4]));
    // A replaced array ("a"), then a staged region update ("b").
    let replace = Arc::new(
        ZarrSink::<f64>::create(&dir, "a", &[6, 4], &opts.clone().overwrite(true))
            .expect("replace"),
    );
    let update = Arc::new(
        ZarrSink::<f64>::open(&dir, "b", &UpdateOptions::new().region(vec![0..3, 0..4]))
            .expect("update"),
    );
    let mut c = blockarray::Computation::new();
    c.store(&new, replace).expect("store a");
    c.store(&new.slice(s![0..3, ..]).expect("top"), update)
        .expect("store b");
    c.store(&new, refuse).expect("store refusing");
    let e = c.run(&SyncScheduler::new()).unwrap_err();
    assert!(e.to_string().contains("refuses to commit"), "{e}");
    for name in ["a", "b"] {
        let got = from_zarr::<f64>(&dir, name)
            .expect(name)
            .compute()
            .expect(name);
        assert_eq!(got, want, "{name} was changed by a run that did not commit");
    }
    assert!(hidden(dir.path()).is_empty(), "{:?}", hidden(dir.path()));
    // Without the refusing sink, both commit, and nothing is left aside.
    let mut c = blockarray::Computation::new();
    let replace = Arc::new(
        ZarrSink::<f64>::create(&dir, "a", &[6, 4], &opts.clone().overwrite(true))
            .expect("replace"),
    );
    c.store(&new, replace).expect("store a");
    c.run(&SyncScheduler::new()).expect("run");
    assert_eq!(
        from_zarr::<f64>(&dir, "a")
            .expect("a")
            .compute()
            .expect("a"),
        new.compute().expect("new")
    );
    assert!(hidden(dir.path()).is_empty(), "{:?}", hidden(dir.path()));
}

/// A new array in new groups of a new store, rolled back because another sink refused to
/// commit: the store's directory is gone (the groups' metadata, written at commit, was left
/// behind, an empty hierarchy where the error said nothing was created).
#[test]
fn a_rolled_back_new_array_leaves_no_groups() {
    let dir = TempPath::new("rollback_groups.zarr");
    let x = BlockArray::<f64>::ones(&[4], 2).expect("x");
    for version in [ZarrVersion::V3, ZarrVersion::V2] {
        let sink = Arc::new(
            ZarrSink::<f64>::create(
                &dir,
                "g/h/a",
                &[4],
                &ArrayOptions::new().version(version).chunks([2]),
            )
            .expect("create"),
        );
        let mut c = blockarray::Computation::new();
        c.store(&x, sink).expect("store");
        c.store(&x, Arc::new(RefusesToCommit(vec![4])))
            .expect("store refusing");
        let e = c.run(&SyncScheduler::new()).unwrap_err();
        assert!(e.to_string().contains("refuses to commit"), "{e}");
        assert!(
            !dir.path().exists(),
            "{version:?}: the store was left behind"
        );
    }
}

/// Storing in place into an array the same computation reads is refused (blocks written early
/// would be read back by later tasks); a staged update of it is fine.
#[test]
fn storing_in_place_into_an_array_the_run_reads_is_refused() {
    let dir = TempPath::new("alias.zarr");
    let x = BlockArray::<f64>::from_fn(&[10], [5], "i", |i| i[0] as f64).expect("x");
    to_zarr_with(
        &dir,
        &[("x", &x)],
        &ArrayOptions::new().chunks([5]),
        &SyncScheduler::new(),
    )
    .expect("write");
    let read = from_zarr::<f64>(&dir, "x").expect("x");
    let reversed = read.slice(s![..;-1]).expect("reversed");
    let in_place = Arc::new(
        ZarrSink::<f64>::open(&dir, "x", &UpdateOptions::new().in_place(true)).expect("sink"),
    );
    let mut c = blockarray::Computation::new();
    c.store(&reversed, in_place).expect("store");
    let e = c.run(&SyncScheduler::new()).unwrap_err();
    assert!(e.to_string().contains("in place"), "{e}");
    let staged = Arc::new(ZarrSink::<f64>::open(&dir, "x", &UpdateOptions::new()).expect("staged"));
    let mut c = blockarray::Computation::new();
    c.store(&reversed, staged).expect("store");
    c.run(&SyncScheduler::new())
        .expect("a staged update may read what it replaces");
    let got = from_zarr::<f64>(&dir, "x")
        .expect("x")
        .compute()
        .expect("x");
    assert_eq!(
        got.into_raw_vec_and_offset().0,
        (0..10).rev().map(f64::from).collect::<Vec<_>>()
    );
}

/// Two sinks into one array in one computation are refused (they would each rewrite the chunk
/// their regions share from the old data, and the second commit would undo the first's part),
/// whether made through `ZarrStore` or added to a `Computation` by hand.
#[test]
fn two_sinks_into_one_array_in_one_computation_are_refused() {
    let dir = TempPath::new("twice.zarr");
    let x = BlockArray::<f64>::zeros(&[10], [10]).expect("x");
    to_zarr_with(
        &dir,
        &[("x", &x)],
        &ArrayOptions::new().chunks([10]),
        &SyncScheduler::new(),
    )
    .expect("write");
    let ones = BlockArray::<f64>::ones(&[5], [5]).expect("ones");
    let twos = &ones * 2.0;
    for in_place in [false, true] {
        let open = |r: Range<usize>| {
            Arc::new(
                ZarrSink::<f64>::open(
                    &dir,
                    "x",
                    &UpdateOptions::new().region(vec![r]).in_place(in_place),
                )
                .expect("sink"),
            )
        };
        let mut c = blockarray::Computation::new();
        c.store(&ones, open(0..5)).expect("first half");
        c.store(&twos, open(5..10)).expect("second half");
        let e = c.run(&SyncScheduler::new()).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let got = from_zarr::<f64>(&dir, "x")
            .expect("x")
            .compute()
            .expect("x");
        assert!(got.iter().all(|&v| v == 0.0), "{got}");
    }
}
