//! A computation that fails while storing leaves no dataset that looks complete, and leaves
//! the datasets that were there before untouched.

mod common;

use blockarray::{BlockArray, ErrorKind};
use blockarray_hdf5::{DatasetOptions, Hdf5Sink, Hdf5Store, from_hdf5, to_hdf5, to_hdf5_with};
use common::{TempPath, all_links};
use dag_core::Scheduler;
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;
use std::sync::Arc;

fn schedulers() -> Vec<Box<dyn Scheduler>> {
    vec![
        Box::new(SyncScheduler::new()),
        Box::new(ThreadedScheduler::builder().threads(3).build().expect("3")),
    ]
}

/// 100 × 100 in 10 × 10 blocks; block (7, 3) fails when computed.
fn failing() -> BlockArray<f64> {
    let x = BlockArray::<f64>::ones(&[100, 100], [10, 10]).expect("x");
    x.map_blocks("fail-at-7-3", None, |b, info| {
        if info.index == [7, 3] {
            Err("simulated failure in block (7, 3)".into())
        } else {
            Ok(b * 3.0)
        }
    })
    .expect("map_blocks")
}

fn original(path: &std::path::Path) -> ndarray::ArrayD<f64> {
    from_hdf5::<f64>(path, "/old")
        .expect("old")
        .compute()
        .expect("read old")
}

#[test]
fn a_failed_store_leaves_no_new_dataset_and_the_old_ones_untouched() {
    for sched in schedulers() {
        for opts in [
            DatasetOptions::new(),
            DatasetOptions::new().deflate(3).shuffle(true),
        ] {
            let file = TempPath::new("fail.h5");
            let old = BlockArray::<f64>::from_fn(&[100, 100], [25, 25], "old", |i| {
                (i[0] * 1000 + i[1]) as f64
            })
            .expect("old");
            to_hdf5(&file, &[("/old", &old)]).expect("old");
            let before = original(file.path());
            let good = BlockArray::<f64>::full(&[100, 100], 2.0, [10, 10]).expect("good");
            let mut store = Hdf5Store::new(&file);
            store
                .dataset("/good", &good, &opts)
                .expect("good")
                .dataset("/nested/bad", &failing(), &opts)
                .expect("bad")
                // Replacing /old: the failure must leave the old one in place.
                .dataset("/old", &good, &opts.clone().overwrite(true))
                .expect("overwrite");
            let err = store
                .run_with(&*sched, &dag_core::NoCallbacks)
                .expect_err("the computation fails");
            assert_eq!(err.kind(), ErrorKind::Graph);
            let msg = err.to_string();
            assert!(msg.contains("simulated failure"), "{msg}");
            assert!(msg.contains(&file.path().display().to_string()), "{msg}");
            // Nothing new, no temporaries, no leftover group; /old as it was.
            assert_eq!(all_links(file.path()), ["/old"]);
            assert_eq!(original(file.path()), before);
        }
    }
}

#[test]
fn a_store_never_run_leaves_nothing() {
    let file = TempPath::new("unrun.h5");
    let x = BlockArray::<f64>::ones(&[10], [5]).expect("x");
    to_hdf5(&file, &[("/keep", &x)]).expect("keep");
    {
        let mut store = Hdf5Store::new(&file);
        store
            .dataset("/a/b/c", &x, &DatasetOptions::new())
            .expect("add");
        // While pending, the real name does not exist; only a temporary one does.
        let links = all_links(file.path());
        assert!(!links.contains(&"/a/b/c".to_owned()), "{links:?}");
        assert!(
            links.iter().any(|l| l.contains("blockarray-tmp")),
            "{links:?}"
        );
    }
    assert_eq!(all_links(file.path()), ["/keep"]);
}

#[test]
fn a_store_commits_its_sink_on_success_and_discards_it_on_failure() {
    let file = TempPath::new("sink.h5");
    let x = BlockArray::<i32>::ones(&[20, 20], [10, 10]).expect("x");
    // A sink that no run finished is deleted when dropped, and so is the file it created.
    let sink = Arc::new(
        Hdf5Sink::<i32>::create(&file, "/never", &[20, 20], &DatasetOptions::new()).expect("sink"),
    );
    assert!(sink.is_temporary());
    assert!(file.path().exists());
    drop(sink);
    assert!(!file.path().exists());
    // `BlockArray::store` commits: the dataset is there under its name; a second commit is
    // harmless; writes after the commit fail.
    let sink = Arc::new(
        Hdf5Sink::<i32>::create(&file, "/s", &[20, 20], &DatasetOptions::new()).expect("sink"),
    );
    x.store(sink.clone()).expect("store");
    assert_eq!(all_links(file.path()), ["/s"]);
    sink.commit().expect("again");
    assert!(x.store(sink.clone()).is_err());
    drop(sink);
    assert_eq!(all_links(file.path()), ["/s"]);
    assert_eq!(
        from_hdf5::<i32>(&file, "/s")
            .expect("s")
            .compute()
            .expect("read")
            .sum(),
        400
    );
    // A failed store discards the sink: no dataset, and a later commit refuses.
    let sink = Arc::new(
        Hdf5Sink::<f64>::create(&file, "/f", &[100, 100], &DatasetOptions::new()).expect("f"),
    );
    let e = failing().store(sink.clone()).expect_err("fails");
    assert!(e.to_string().contains("simulated failure"), "{e}");
    assert!(sink.commit().is_err());
    assert_eq!(all_links(file.path()), ["/s"]);
    // Discarded explicitly: gone, and commit then refuses.
    let sink = Hdf5Sink::<i32>::create(&file, "/t", &[1], &DatasetOptions::new()).expect("t");
    sink.discard().expect("discard");
    assert!(sink.commit().is_err());
    assert_eq!(all_links(file.path()), ["/s"]);
    // Storing an array of the wrong shape names the file and the dataset.
    let sink = Arc::new(Hdf5Sink::<i32>::open(&file, "/s").expect("open"));
    let small = BlockArray::<i32>::ones(&[5], 5).expect("small");
    let e = small.store(sink).expect_err("wrong shape");
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert!(
        e.to_string().contains("/s") && e.to_string().contains("sink.h5"),
        "{e}"
    );
}

#[test]
fn overwrite_replaces_only_on_success() {
    let file = TempPath::new("overwrite.h5");
    let a = BlockArray::<f64>::full(&[30], 1.0, [10]).expect("a");
    let b = BlockArray::<f64>::full(&[50], 2.0, [10]).expect("b");
    to_hdf5(&file, &[("/v", &a)]).expect("a");
    to_hdf5_with(
        &file,
        &[("/v", &b)],
        &DatasetOptions::new().overwrite(true),
        &SyncScheduler::new(),
    )
    .expect("replace");
    let v = from_hdf5::<f64>(&file, "/v")
        .expect("v")
        .compute()
        .expect("read");
    assert_eq!(v.shape(), [50]);
    assert!(v.iter().all(|&x| x == 2.0));
    assert_eq!(all_links(file.path()), ["/v"]);
}
