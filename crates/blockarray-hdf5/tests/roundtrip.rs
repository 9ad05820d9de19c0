//! Round trips through HDF5 files against the in-memory ndarray, for random shapes, chunkings,
//! dataset chunkings and filters, with both schedulers and both chunk I/O paths.

mod common;

use blockarray::{BlockArray, s};
use blockarray_hdf5::{
    ChunkIo, DatasetOptions, Hdf5Element, Hdf5Sink, Hdf5Store, ReadOptions, dataset_info,
    from_hdf5, from_hdf5_with, to_hdf5, to_hdf5_with,
};
use common::TempPath;
use dag_core::Scheduler;
use ndarray::{ArrayD, IxDyn};
use num_complex::Complex;
use proptest::prelude::*;
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;
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

#[derive(Clone, Debug)]
struct Case {
    shape: Vec<usize>,
    blocks: Vec<usize>,
    dataset_chunks: Option<Vec<usize>>,
    read_chunks: Option<Vec<usize>>,
    filters: u8,
    write_io: ChunkIo,
    read_io: ChunkIo,
    threaded: bool,
}

fn io() -> impl Strategy<Value = ChunkIo> {
    prop_oneof![Just(ChunkIo::Auto), Just(ChunkIo::Library)]
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=3)
        .prop_flat_map(|nd| {
            (
                prop::collection::vec(0usize..=11, nd),
                prop::collection::vec(1usize..=5, nd),
                prop::option::of(prop::collection::vec(1usize..=6, nd)),
                prop::option::of(prop::collection::vec(1usize..=7, nd)),
                0u8..3,
                io(),
                io(),
                any::<bool>(),
            )
        })
        .prop_map(
            |(shape, blocks, dataset_chunks, read_chunks, filters, write_io, read_io, threaded)| {
                Case {
                    shape,
                    blocks,
                    dataset_chunks,
                    read_chunks,
                    filters,
                    write_io,
                    read_io,
                    threaded,
                }
            },
        )
}

fn run_case(c: &Case) -> Result<(), TestCaseError> {
    let scheds = schedulers();
    let sched = &*scheds[usize::from(c.threaded)];
    let expected = reference(&c.shape);
    let x = BlockArray::from_array(expected.clone(), c.blocks.clone()).expect("from_array");
    let file = TempPath::new("roundtrip.h5");
    let empty = c.shape.contains(&0);
    let mut opts = DatasetOptions::new().io(c.write_io);
    if let Some(ch) = &c.dataset_chunks {
        opts = opts.chunks(ch.clone());
    }
    if !empty {
        opts = match c.filters {
            1 => opts.deflate(3),
            2 => opts.deflate(1).shuffle(true),
            _ => opts,
        };
    }
    to_hdf5_with(&file, &[("/data/x", &x)], &opts, sched).expect("store");
    let mut ropts = ReadOptions::new().io(c.read_io);
    if let Some(ch) = &c.read_chunks {
        ropts = ropts.chunks(ch.clone());
    }
    let y: BlockArray<f64> = from_hdf5_with(&file, "/data/x", &ropts).expect("open");
    prop_assert_eq!(y.shape(), c.shape.as_slice());
    if c.read_chunks.is_none() && !empty {
        // The array follows the dataset's chunks.
        let info = dataset_info(&file, "/data/x").expect("info");
        let stored = info.chunks.expect("chunked");
        let want: Vec<usize> = stored
            .iter()
            .zip(&c.shape)
            .map(|(&s, &n)| s.min(n))
            .collect();
        prop_assert_eq!(y.chunks().max_block_shape(), want);
    }
    let got = y.compute_with(sched).expect("compute");
    prop_assert_eq!(&got, &expected);
    // A reduction and a strided slice read through the same source.
    if !empty {
        let sum = y
            .sum(None, false)
            .expect("sum")
            .compute_with(sched)
            .expect("sum runs");
        let want = expected.sum();
        prop_assert!((sum.into_iter().next().unwrap() - want).abs() < 1e-9 * (1.0 + want.abs()));
        let sliced = y
            .slice(s![..;2])
            .expect("slice")
            .compute_with(sched)
            .expect("runs");
        prop_assert_eq!(
            sliced,
            expected
                .slice_axis(ndarray::Axis(0), ndarray::Slice::new(0, None, 2))
                .to_owned()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn f64_round_trips_match_ndarray(c in case()) {
        run_case(&c)?;
    }
}

fn round_trip_type<T: Hdf5Element>(values: Vec<T>, shape: &[usize], compress: bool) {
    let expected = ArrayD::from_shape_vec(IxDyn(shape), values).expect("sizes");
    let x = BlockArray::from_array(expected.clone(), [3, 2]).expect("array");
    for sched in schedulers() {
        for io in [ChunkIo::Auto, ChunkIo::Library] {
            let file = TempPath::new("types.h5");
            let mut opts = DatasetOptions::new().chunks([2, 3]).io(io);
            if compress {
                opts = opts.deflate(6).shuffle(true);
            }
            to_hdf5_with(&file, &[("/v", &x)], &opts, &*sched).expect("store");
            let info = dataset_info(&file, "/v").expect("info");
            assert_eq!(info.dtype, T::DTYPE, "{info:?}");
            for rio in [ChunkIo::Auto, ChunkIo::Library] {
                let back: BlockArray<T> =
                    from_hdf5_with(&file, "/v", &ReadOptions::new().io(rio)).expect("open");
                assert_eq!(back.compute_with(&*sched).expect("compute"), expected);
            }
        }
    }
}

#[test]
fn every_element_type_round_trips() {
    let shape = [7, 5];
    let n = 35;
    for compress in [false, true] {
        round_trip_type(
            (0..n).map(|i| value(i) as f32).collect::<Vec<f32>>(),
            &shape,
            compress,
        );
        round_trip_type((0..n).map(value).collect::<Vec<f64>>(), &shape, compress);
        round_trip_type(
            (0..n)
                .map(|i| (value(i) * 1e6) as i32)
                .collect::<Vec<i32>>(),
            &shape,
            compress,
        );
        round_trip_type(
            (0..n)
                .map(|i| (value(i) * 1e15) as i64)
                .collect::<Vec<i64>>(),
            &shape,
            compress,
        );
        round_trip_type(
            (0..n).map(|i| (i * 37 % 256) as u8).collect::<Vec<u8>>(),
            &shape,
            compress,
        );
        // The integer types of microscopy and imaging stacks (uint16 above all), at their
        // extremes.
        round_trip_type(
            (0..n)
                .map(|i| (i as i64 * 7 - 128) as i8)
                .collect::<Vec<i8>>(),
            &shape,
            compress,
        );
        round_trip_type(
            (0..n)
                .map(|i| (i as i64 * 1871 - 32768) as i16)
                .collect::<Vec<i16>>(),
            &shape,
            compress,
        );
        round_trip_type(
            (0..n)
                .map(|i| (i * 1871 % 65536) as u16)
                .collect::<Vec<u16>>(),
            &shape,
            compress,
        );
        round_trip_type(
            (0..n)
                .map(|i| (i as u32).wrapping_mul(122_713_351))
                .collect::<Vec<u32>>(),
            &shape,
            compress,
        );
        round_trip_type(
            (0..n)
                .map(|i| u64::MAX - i as u64 * 1_000_003)
                .collect::<Vec<u64>>(),
            &shape,
            compress,
        );
        round_trip_type(
            (0..n).map(|i| value(i) > 0.0).collect::<Vec<bool>>(),
            &shape,
            compress,
        );
        round_trip_type(
            (0..n)
                .map(|i| Complex::new(value(i) as f32, -value(i + 1) as f32))
                .collect::<Vec<_>>(),
            &shape,
            compress,
        );
        round_trip_type(
            (0..n)
                .map(|i| Complex::new(value(i), value(i + 7)))
                .collect::<Vec<_>>(),
            &shape,
            compress,
        );
    }
}

#[test]
fn scalars_and_empty_arrays_round_trip() {
    let file = TempPath::new("scalar.h5");
    let s = BlockArray::from_array(ArrayD::from_elem(IxDyn(&[]), 4.5f64), Vec::<usize>::new())
        .expect("scalar");
    let e = BlockArray::<f64>::zeros(&[0, 3], [1, 3]).expect("empty");
    let mut store = Hdf5Store::new(&file);
    store
        .dataset("/s", &s, &DatasetOptions::new())
        .expect("scalar dataset")
        .dataset("/e", &e, &DatasetOptions::new())
        .expect("empty dataset");
    store.run().expect("run");
    let s2 = from_hdf5::<f64>(&file, "/s").expect("open scalar");
    assert_eq!(s2.shape(), &[] as &[usize]);
    assert_eq!(s2.compute().expect("compute")[IxDyn(&[])], 4.5);
    let e2 = from_hdf5::<f64>(&file, "/e").expect("open empty");
    assert_eq!(e2.shape(), &[0, 3]);
    assert_eq!(e2.compute().expect("compute").len(), 0);
}

#[test]
fn store_into_an_existing_dataset_in_place() {
    let file = TempPath::new("inplace.h5");
    let zeros = BlockArray::<i64>::zeros(&[20, 30], [10, 10]).expect("zeros");
    to_hdf5_with(
        &file,
        &[("/a", &zeros)],
        &DatasetOptions::new().chunks([4, 7]).deflate(2),
        &SyncScheduler::new(),
    )
    .expect("create");
    // Blocks that do not line up with the stored chunks: partial chunks through the library,
    // whole ones directly.
    let x = BlockArray::<i64>::from_fn(&[20, 30], [6, 9], "ij", |i| (i[0] * 100 + i[1]) as i64)
        .expect("x");
    for sched in schedulers() {
        let sink = Arc::new(Hdf5Sink::<i64>::open(&file, "/a").expect("open sink"));
        sink.check_shape(x.shape()).expect("same shape");
        x.store_with(sink.clone(), &*sched).expect("store");
        sink.commit().expect("flush");
        let back = from_hdf5::<i64>(&file, "/a")
            .expect("open")
            .compute()
            .expect("read");
        assert_eq!(back, x.compute().expect("x"));
    }
}

/// A dataset whose partial edge chunks are stored unfiltered
/// (`H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS`, their filter mask 0 all the same) is read and
/// written through the library: decoding such a chunk as shuffled and deflated gave garbage
/// values or a corrupt-stream error.
#[test]
fn unfiltered_partial_edge_chunks_are_read_and_written_as_stored() {
    let file = TempPath::new("partial.h5");
    let values: Vec<i32> = (1000..1010).collect();
    {
        let h = hdf5::File::with_options()
            .with_fapl(|p| p.libver_v110())
            .create(file.as_ref())
            .expect("create file");
        let ds = h
            .new_dataset::<i32>()
            .chunk_opts(hdf5::dataset::ChunkOpts::DONT_FILTER_PARTIAL_CHUNKS)
            .chunk([4])
            .shuffle()
            .deflate(1)
            .shape([10])
            .create("x")
            .expect("create dataset");
        ds.write_raw(&values).expect("write");
    }
    let back = from_hdf5::<i32>(&file, "/x")
        .expect("open")
        .compute()
        .expect("read");
    assert_eq!(back.into_raw_vec_and_offset().0, values);
    // Written in place, then read by the library itself.
    let x = BlockArray::<i32>::from_fn(&[10], [4], "i", |i| 7 * i[0] as i32).expect("x");
    let sink = Arc::new(Hdf5Sink::<i32>::open(&file, "/x").expect("sink"));
    x.store_with(sink.clone(), &SyncScheduler::new())
        .expect("store");
    sink.commit().expect("commit");
    let h = hdf5::File::open(file.as_ref()).expect("reopen");
    let raw = h.dataset("x").expect("x").read_raw::<i32>().expect("read");
    assert_eq!(raw, (0..10).map(|i| 7 * i).collect::<Vec<i32>>());
}

/// A filter pipeline that hdf5-metno cannot parse (a scale-offset factor above 255) is not
/// taken for no filters: the stored bytes had been read as values.
#[test]
fn a_pipeline_that_cannot_be_parsed_is_read_through_the_library() {
    let file = TempPath::new("scaleoffset.h5");
    let values: Vec<f64> = (0..176).map(|i| 1.0 + i as f64 / 64.0).collect();
    {
        let h = hdf5::File::create(file.as_ref()).expect("create file");
        let dcpl = hdf5::plist::DatasetCreate::try_new().expect("dcpl");
        let dims = [176 as hdf5_sys::h5::hsize_t];
        // SAFETY: a valid property list, one chunk dimension; the library's lock is held.
        let r = hdf5::sync::sync(|| unsafe {
            hdf5_sys::h5p::H5Pset_chunk(dcpl.id(), 1, dims.as_ptr()).min(
                hdf5_sys::h5p::H5Pset_scaleoffset(
                    dcpl.id(),
                    hdf5_sys::h5z::H5Z_SO_scale_type_t::H5Z_SO_FLOAT_DSCALE,
                    256,
                ),
            )
        });
        assert!(r >= 0);
        let ds = h
            .new_dataset::<f64>()
            .set_dcpl(&dcpl)
            .shape([176])
            .create("x")
            .expect("create dataset");
        ds.write_raw(&values).expect("write");
    }
    let back = from_hdf5::<f64>(&file, "/x")
        .expect("open")
        .compute()
        .expect("read");
    let back = back.into_raw_vec_and_offset().0;
    assert!(
        back.iter().zip(&values).all(|(a, b)| (a - b).abs() < 1e-9),
        "{:?}",
        &back[..4]
    );
}

#[test]
fn edge_chunks_written_in_place_are_padded_with_the_fill_value() {
    // A resizable dataset with a fill value other than zero: what lies past its end in an edge
    // chunk shows when it grows, and must be the fill value, as when the library writes.
    let file = TempPath::new("fill.h5");
    {
        let h = hdf5::File::create(file.as_ref()).expect("create file");
        // Deflated, so that whole chunks are written directly (not through the library).
        h.new_dataset::<f64>()
            .chunk([2])
            .deflate(1)
            .shape(5..)
            .fill_value(7.5)
            .create("x")
            .expect("create dataset");
    }
    let x = BlockArray::<f64>::from_fn(&[5], [2], "i", |i| i[0] as f64 + 1.0).expect("x");
    for sched in schedulers() {
        let sink = Arc::new(Hdf5Sink::<f64>::open(&file, "/x").expect("open sink"));
        x.store_with(sink.clone(), &*sched).expect("store");
        sink.commit().expect("commit");
        let h = hdf5::File::open_rw(file.as_ref()).expect("reopen");
        let ds = h.dataset("x").expect("dataset");
        ds.resize([6]).expect("grow");
        assert_eq!(
            ds.read_raw::<f64>().expect("read"),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 7.5]
        );
        ds.resize([5]).expect("shrink back");
    }
}

#[test]
fn read_and_write_the_same_file_in_one_computation() {
    let file = TempPath::new("same.h5");
    let x = BlockArray::<f64>::from_fn(&[64, 48], [16, 16], "v", |i| value(i[0] * 48 + i[1]))
        .expect("x");
    to_hdf5_with(
        &file,
        &[("/x", &x)],
        &DatasetOptions::new().deflate(4).shuffle(true),
        &SyncScheduler::new(),
    )
    .expect("write x");
    // The file is open read-only for the source; the store upgrades the shared handle.
    let y = from_hdf5::<f64>(&file, "/x").expect("read x");
    let doubled = &y * 2.0;
    let mut store = Hdf5Store::new(&file);
    store
        .dataset("/y", &doubled, &DatasetOptions::new().deflate(1))
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
    assert!(
        (results
            .take(total)
            .expect("sum")
            .into_iter()
            .next()
            .unwrap()
            - expected.sum())
        .abs()
            < 1e-9
    );
    let back = from_hdf5::<f64>(&file, "/y")
        .expect("read y")
        .compute()
        .expect("y");
    assert_eq!(back, &expected * 2.0);
    // The source opened before the store still reads.
    assert_eq!(y.compute().expect("x again"), expected);
}

#[test]
fn direct_reads_are_used_for_compressed_native_datasets() {
    let file = TempPath::new("direct.h5");
    let x = BlockArray::<f32>::ones(&[10, 10], [5, 5]).expect("x");
    to_hdf5_with(
        &file,
        &[("/c", &x)],
        &DatasetOptions::new().deflate(1),
        &SyncScheduler::new(),
    )
    .expect("c");
    to_hdf5_with(
        &file,
        &[("/u", &x)],
        &DatasetOptions::new(),
        &SyncScheduler::new(),
    )
    .expect("u");
    let c = blockarray_hdf5::Hdf5Source::<f32>::open(&file, "/c", ChunkIo::Auto).expect("c");
    assert!(c.reads_directly());
    assert_eq!(c.chunk_shape(), Some(&[5, 5][..]));
    let c = blockarray_hdf5::Hdf5Source::<f32>::open(&file, "/c", ChunkIo::Library).expect("c");
    assert!(!c.reads_directly());
    let u = blockarray_hdf5::Hdf5Source::<f32>::open(&file, "/u", ChunkIo::Auto).expect("u");
    assert!(
        !u.reads_directly(),
        "uncompressed data gains nothing from the direct path"
    );
}

#[test]
fn unwritten_chunks_read_as_the_fill_value() {
    let file = TempPath::new("fill.h5");
    let sink = Hdf5Sink::<f64>::create(
        &file,
        "/sparse",
        &[10, 10],
        &DatasetOptions::new().chunks([5, 5]).deflate(1),
    )
    .expect("sink");
    let block = ArrayD::from_elem(IxDyn(&[5, 5]), 3.0);
    blockarray::ChunkSink::write_block(&sink, &[5, 0], &block).expect("one block");
    sink.commit().expect("commit");
    for io in [ChunkIo::Auto, ChunkIo::Library] {
        let y = from_hdf5_with::<f64>(
            &file,
            "/sparse",
            &ReadOptions::new().io(io).chunks([10, 10]),
        )
        .expect("open")
        .compute()
        .expect("read");
        assert_eq!(y.sum(), 75.0);
        assert_eq!(y[[7, 2]], 3.0);
        assert_eq!(y[[2, 2]], 0.0);
    }
}

#[test]
fn only_the_blocks_a_slice_needs_are_read() {
    let file = TempPath::new("lazy.h5");
    let x = BlockArray::<f64>::ones(&[100, 100], [10, 10]).expect("x");
    to_hdf5_with(
        &file,
        &[("/x", &x)],
        &DatasetOptions::new(),
        &SyncScheduler::new(),
    )
    .expect("x");
    let y = from_hdf5::<f64>(&file, "/x").expect("y");
    let part = y.slice(s![5..15, 95..]).expect("slice");
    let (graph, _) = part.lowered(None).expect("lower");
    let reads = graph
        .keys()
        .iter()
        .filter(|k| k.to_string().contains("hdf5"))
        .count();
    assert_eq!(reads, 2, "{graph}");
    assert_eq!(part.compute().expect("part").sum(), 50.0);
}

/// Unfiltered and filtered chunks are read with `pread` outside the HDF5 lock when the file is
/// open read-only, with unwritten chunks (the fill value), and regions across chunk edges; in a
/// file with a userblock (file offsets are not the library's addresses, and HDF5 1.14.4
/// changed whether chunk addresses count it) through the library instead: the same values.
#[test]
fn lock_free_chunk_reads_honour_userblocks_fill_values_and_edges() {
    for userblock in [0u64, 1024] {
        chunk_reads_in_a_file_with(userblock);
    }
}

fn chunk_reads_in_a_file_with(userblock: u64) {
    let file = TempPath::new(&format!("userblock-{userblock}.h5"));
    let (rows, cols) = (37usize, 23usize);
    let values = ArrayD::from_shape_fn(IxDyn(&[rows, cols]), |ix| (ix[0] * 100 + ix[1]) as f64);
    {
        let f = hdf5::File::with_options()
            .with_fcpl(|p| p.userblock(userblock))
            .create(file.path())
            .expect("create");
        assert_eq!(f.userblock(), userblock);
        let plain = f
            .new_dataset::<f64>()
            .chunk([8, 5])
            .shape([rows, cols])
            .create("plain")
            .expect("plain");
        plain.write(&values).expect("write plain");
        let packed = f
            .new_dataset::<f64>()
            .chunk([8, 5])
            .shuffle()
            .deflate(3)
            .shape([rows, cols])
            .create("packed")
            .expect("packed");
        packed.write(&values).expect("write packed");
        let sparse = f
            .new_dataset::<i32>()
            .chunk([10, 10])
            .fill_value(-7)
            .shape([30, 30])
            .create("sparse")
            .expect("sparse");
        sparse
            .write_slice(
                &ndarray::Array2::<i32>::from_elem((10, 10), 5),
                ndarray::s![10..20, 0..10],
            )
            .expect("write one chunk");
    }
    for name in ["plain", "packed"] {
        for chunks in [[8usize, 5usize], [37, 23], [10, 7]] {
            let got = from_hdf5_with::<f64>(&file, name, &ReadOptions::new().chunks(chunks))
                .expect("open")
                .compute()
                .expect("read");
            assert_eq!(got, values, "{name} in chunks {chunks:?}");
        }
        let part = from_hdf5::<f64>(&file, name)
            .expect("open")
            .slice(s![3..30, 4..21])
            .expect("slice")
            .compute()
            .expect("read");
        assert_eq!(
            part,
            values.slice(ndarray::s![3..30, 4..21]).into_dyn(),
            "{name}"
        );
    }
    let sparse = from_hdf5::<i32>(&file, "sparse")
        .expect("open")
        .compute()
        .expect("read");
    assert_eq!(sparse[[12, 3]], 5);
    assert_eq!(sparse[[2, 3]], -7);
    assert_eq!(sparse.iter().filter(|&&v| v == 5).count(), 100);
}

/// A file replaced under its path (an atomic rename over it), or deleted and written again,
/// while an array read from the old file is alive: a new read opens the file the path names
/// now, not the old file's shared handle.
#[test]
fn a_replaced_or_recreated_file_is_read_afresh() {
    let file = TempPath::new("replaced.h5");
    let other = TempPath::new("replacement.h5");
    let ones = BlockArray::<f64>::ones(&[4], 2).expect("ones");
    let twos = &ones * 2.0;
    to_hdf5(&file, &[("/x", &ones)]).expect("write");
    let old = from_hdf5::<f64>(&file, "/x").expect("old");
    to_hdf5(&other, &[("/x", &twos)]).expect("write the replacement");
    // The replacement has the old file's length and modification time (writes a few
    // milliseconds apart often do): only the file's identity tells the two apart.
    let meta = std::fs::metadata(file.path()).expect("metadata");
    assert_eq!(
        std::fs::metadata(other.path()).expect("metadata").len(),
        meta.len()
    );
    std::fs::File::options()
        .write(true)
        .open(other.path())
        .and_then(|f| f.set_modified(meta.modified()?))
        .expect("set the modification time");
    std::fs::rename(other.path(), file.path()).expect("rename");
    let new = from_hdf5::<f64>(&file, "/x").expect("new");
    assert_eq!(new.compute().expect("new").sum(), 8.0);
    // Both in one computation: two sources, two names (one name gave 2 + 2 or 1 + 1).
    let both = (&old + &new).expect("add").compute().expect("both");
    assert!(both.iter().all(|&v| v == 3.0), "{both}");
    drop((old, new));
    let alive = from_hdf5::<f64>(&file, "/x").expect("alive");
    std::fs::remove_file(file.path()).expect("remove");
    to_hdf5(&file, &[("/x", &ones)]).expect("write again");
    let again = from_hdf5::<f64>(&file, "/x").expect("again");
    assert_eq!(again.compute().expect("again").sum(), 4.0);
    drop(alive);
}
