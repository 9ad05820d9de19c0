//! A computation that fails while storing leaves no array that looks complete, and leaves the
//! arrays that were there before untouched — byte for byte — unless in-place writes were
//! asked for.

mod common;

use blockarray::{BlockArray, ErrorKind};
use blockarray_zarr::{
    ArrayOptions, UpdateOptions, ZarrSink, ZarrStore, from_zarr, to_zarr, to_zarr_with,
};
use common::{TempPath, names, snapshot};
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

fn old_array() -> BlockArray<f64> {
    BlockArray::<f64>::from_fn(&[100, 100], [10, 10], "old", |i| {
        (i[0] * 1000 + i[1]) as f64
    })
    .expect("old")
}

#[test]
fn a_failed_store_leaves_no_new_array_and_the_old_ones_untouched() {
    for sched in schedulers() {
        let dir = TempPath::new("fail.zarr");
        to_zarr(&dir, &[("old", &old_array())]).expect("old");
        let before = snapshot(dir.path());
        let good = BlockArray::<f64>::full(&[100, 100], 2.0, [10, 10]).expect("good");
        let mut store = ZarrStore::new(&dir);
        store
            .array("good", &good, &ArrayOptions::new())
            .expect("good")
            .array("nested/deeper/bad", &failing(), &ArrayOptions::new())
            .expect("bad")
            // Replacing `old` fails too: the old array stays.
            .array("old", &good, &ArrayOptions::new().overwrite(true))
            .expect("overwrite");
        let e = store.run_with(&*sched, &dag_core::NoCallbacks).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Graph);
        let msg = e.to_string();
        assert!(msg.contains("simulated failure in block (7, 3)"), "{msg}");
        assert!(
            msg.contains("no array was created, replaced or updated by staging")
                && !msg.contains("in place"),
            "{msg}"
        );
        // Exactly what was there before: no new array, no temporary directory, no group
        // directory made for the failed one, the old array byte for byte.
        assert_eq!(snapshot(dir.path()), before);
    }
}

#[test]
fn a_failed_store_into_a_new_store_leaves_nothing() {
    let parent = TempPath::new("parent");
    std::fs::create_dir(&parent).expect("parent");
    let dir = parent.path().join("new.zarr");
    let e = to_zarr(&dir, &[("a/b", &failing())]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Graph);
    assert!(
        !dir.exists(),
        "the store directory made for the run is removed"
    );
    assert!(
        names(parent.path()).is_empty(),
        "{:?}",
        names(parent.path())
    );
    // Several new arrays sharing the new store and a new group: still nothing left, whichever
    // sink is discarded first.
    for sched in schedulers() {
        let good = BlockArray::<f64>::ones(&[100, 100], [10, 10]).expect("good");
        let mut store = ZarrStore::new(&dir);
        store
            .array("g/good", &good, &ArrayOptions::new())
            .expect("good")
            .array("g/h/bad", &failing(), &ArrayOptions::new())
            .expect("bad")
            .array("other", &good, &ArrayOptions::new())
            .expect("other");
        assert!(store.run_with(&*sched, &dag_core::NoCallbacks).is_err());
        assert!(!dir.exists(), "{:?}", names(&dir));
        // And a store that is never run.
        let mut store = ZarrStore::new(&dir);
        store
            .array("g/good", &good, &ArrayOptions::new())
            .expect("good")
            .array("other", &good, &ArrayOptions::new())
            .expect("other");
        drop(store);
        assert!(!dir.exists(), "{:?}", names(&dir));
    }
}

#[test]
fn a_failed_update_leaves_the_array_untouched_unless_in_place() {
    for sched in schedulers() {
        let dir = TempPath::new("update.zarr");
        to_zarr(&dir, &[("old", &old_array())]).expect("old");
        let before = snapshot(dir.path());
        // Staged, whole array and a region.
        for region in [None, Some(vec![0..100, 0..100])] {
            let mut opts = UpdateOptions::new();
            if let Some(r) = region {
                opts = opts.region(r);
            }
            let mut store = ZarrStore::new(&dir);
            store.update("old", &failing(), &opts).expect("update");
            assert!(store.run_with(&*sched, &dag_core::NoCallbacks).is_err());
            assert_eq!(
                snapshot(dir.path()),
                before,
                "staged updates change nothing"
            );
        }
    }
    // In place, one task at a time: the blocks before the failing one were written. This is
    // the documented cost of UpdateOptions::in_place.
    let dir = TempPath::new("in-place.zarr");
    to_zarr(&dir, &[("old", &old_array())]).expect("old");
    let mut store = ZarrStore::new(&dir);
    store
        .update("old", &failing(), &UpdateOptions::new().in_place(true))
        .expect("update");
    let msg = store
        .run_with(&SyncScheduler::new(), &dag_core::NoCallbacks)
        .unwrap_err()
        .to_string();
    // The error says what a failure leaves: this array partly written.
    assert!(
        msg.contains("updated in place, /old may be left partly written"),
        "{msg}"
    );
    let now = from_zarr::<f64>(&dir, "old")
        .expect("old")
        .compute()
        .expect("old");
    assert_eq!(
        now[[0, 0]],
        3.0,
        "block (0, 0) was written before the failure"
    );
    assert_eq!(now[[99, 99]], 99_099.0, "block (9, 9) was not");
}

#[test]
fn a_store_dropped_without_running_leaves_nothing() {
    let dir = TempPath::new("dropped.zarr");
    to_zarr(&dir, &[("old", &old_array())]).expect("old");
    let before = snapshot(dir.path());
    {
        let mut store = ZarrStore::new(&dir);
        store
            .array("new", &old_array(), &ArrayOptions::new())
            .expect("new")
            .existing("old", &old_array())
            .expect("existing");
        assert!(
            names(dir.path())
                .iter()
                .any(|n| n.starts_with(".new.blockarray-tmp-"))
        );
        assert!(
            names(dir.path())
                .iter()
                .any(|n| n.starts_with(".old.blockarray-stage-"))
        );
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn an_array_that_appears_during_the_run_is_not_replaced() {
    let dir = TempPath::new("race.zarr");
    let x = BlockArray::<f64>::ones(&[10], [5]).expect("x");
    let sink = Arc::new(
        ZarrSink::<f64>::create(&dir, "x", &[10], &ArrayOptions::new().chunks([5])).expect("sink"),
    );
    // Another writer creates `x` while ours runs.
    let other = BlockArray::<f64>::full(&[10], 7.0, [5]).expect("other");
    to_zarr(&dir, &[("x", &other)]).expect("other writer");
    let e = x.store(sink).unwrap_err();
    assert!(
        e.to_string().contains("appeared while the computation ran"),
        "{e}"
    );
    assert_eq!(
        from_zarr::<f64>(&dir, "x")
            .expect("x")
            .compute()
            .expect("x")
            .sum(),
        70.0,
        "the other writer's array stays"
    );
    assert!(
        names(dir.path()).iter().all(|n| !n.starts_with('.')),
        "{:?}",
        names(dir.path())
    );
}

#[test]
fn overwriting_replaces_the_array_only_after_success() {
    let dir = TempPath::new("overwrite.zarr");
    to_zarr(&dir, &[("a", &old_array())]).expect("old");
    let new = BlockArray::<f64>::full(&[4, 4], 1.5, [2, 2]).expect("new");
    to_zarr_with(
        &dir,
        &[("a", &new)],
        &ArrayOptions::new().overwrite(true),
        &ThreadedScheduler::new(),
    )
    .expect("overwrite");
    let a = from_zarr::<f64>(&dir, "a").expect("a");
    assert_eq!(a.shape(), &[4, 4]);
    assert_eq!(a.compute().expect("a").sum(), 24.0);
    // No chunk of the old array survives (its 100 chunk files are gone).
    let chunks = names(dir.path())
        .into_iter()
        .filter(|n| n.starts_with("a/c/") && !n.ends_with('/'))
        .count();
    assert_eq!(chunks, 4);
    assert!(names(dir.path()).iter().all(|n| !n.starts_with('.')));
}
