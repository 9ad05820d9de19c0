//! Equal keys must mean equal work: user functions whose captured values differ never share a
//! key, whatever API they come through (a collision silently reuses one closure's result for
//! the other); functions the user vouches for with `OpName::pure` share as promised.

use blockarray::{BlockArray, Fold, OpName, blockwise, reduce};
use dag_core::Delayed;
use sched_sync::SyncScheduler;

fn x() -> BlockArray<f64> {
    BlockArray::<f64>::ones(&[6, 4], [3, 2]).unwrap()
}

fn all(a: &BlockArray<f64>, v: f64) -> bool {
    a.compute().unwrap().iter().all(|&e| e == v)
}

#[test]
fn map_blocks_closures_with_different_captures_do_not_collide() {
    // The example: `scaled(&x, 2.0) + scaled(&x, 3.0)` gave 4 everywhere.
    fn scaled(x: &BlockArray<f64>, k: f64) -> BlockArray<f64> {
        x.map_blocks("scale", None, move |b, _| Ok(b * k)).unwrap()
    }
    let x = x();
    let (a, b) = (scaled(&x, 2.0), scaled(&x, 3.0));
    assert_ne!(a.name(), b.name());
    assert!(all(&(&a + &b).unwrap(), 5.0));
}

#[test]
fn map_zip_map_from_fn_blockwise_and_fold_closures_do_not_collide() {
    let x = x();
    let map = |k: f64| x.map("scale", move |v| v * k);
    assert!(all(&(&map(2.0) + &map(3.0)).unwrap(), 5.0));

    let zip = |k: f64| x.zip_map(&x, "axpy", move |a, b| a * k + b).unwrap();
    assert!(all(&(&zip(2.0) + &zip(3.0)).unwrap(), 7.0));

    let generated = |k: f64| BlockArray::from_fn(&[6, 4], [3, 2], "const", move |_| k).unwrap();
    assert!(all(&(&generated(2.0) + &generated(3.0)).unwrap(), 5.0));

    let bw = |k: f64| blockwise("shift", &[&x], None, move |b, _| Ok(b[0] + k)).unwrap();
    assert!(all(&(&bw(2.0) + &bw(3.0)).unwrap(), 7.0));

    let y = BlockArray::arange(0.0f64, 10.0, 1.0, 3).unwrap();
    let capped = |cap: f64| {
        reduce(
            &y,
            Fold::new("capped-max", f64::MIN, move |a: f64, b: f64| {
                a.max(b.min(cap))
            }),
            None,
            false,
            2,
        )
        .unwrap()
    };
    let total = (&capped(3.0) + &capped(100.0)).unwrap();
    assert_eq!(total.compute().unwrap().into_iter().next(), Some(3.0 + 9.0));
}

#[test]
fn delayed_closures_with_different_captures_do_not_collide() {
    let base = Delayed::value(1.0f64);
    let scaled = |k: f64| base.map("scale", move |v| Ok(v * k));
    let sum = scaled(2.0).zip_with(&scaled(3.0), "add", |a, b| Ok(a + b));
    assert_eq!(sum.compute(&SyncScheduler::new()).unwrap(), 5.0);
}

#[test]
fn pure_names_share_tasks_and_distinguish_their_tokens() {
    let x = x();
    let pure = |k: f64| x.map(OpName::pure("scale", &k), move |v| v * k);
    assert_eq!(pure(2.0).name(), pure(2.0).name());
    assert_ne!(pure(2.0).name(), pure(3.0).name());
    assert!(all(&(&pure(2.0) + &pure(3.0)).unwrap(), 5.0));
    // Builtins are keyed by what they compute: equal expressions share their tasks.
    assert_eq!(x.exp().name(), x.exp().name());
    assert_eq!((&x + 2.0).name(), (&x + 2.0).name());
    assert_ne!((&x + 2.0).name(), (&x + 3.0).name());
    assert_eq!(
        x.sum(None, false).unwrap().name(),
        x.sum(None, false).unwrap().name()
    );
}
