//! Equal keys must mean equal work: user functions whose captured values differ never share a
//! key, whatever API they come through (a collision silently reuses one closure's result for
//! the other); functions the user vouches for with `OpName::pure` share as promised.

use blockarray::{BlockArray, Computation, Fold, OpName, Reduction, Tokenizer, blockwise, reduce};
use dag_core::Delayed;
use ndarray::{ArrayD, Axis, IxDyn};
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
fn delayed_values_of_equal_bits_and_different_types_do_not_collide() {
    // `1.0f32` is the bit pattern 0x3f80_0000: keyed by contents alone, the two were one task
    // and the run failed on the other's type.
    let f = Delayed::value(1.0f32);
    let u = Delayed::value(0x3f80_0000u32);
    assert_ne!(f.key(), u.key());
    let both = f.zip_with(&u, "add", |a, b| Ok(f64::from(*a) + f64::from(*b)));
    let want = 1.0 + f64::from(0x3f80_0000u32);
    assert_eq!(both.compute(&SyncScheduler::new()).unwrap(), want);
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

/// A user's reduction, Σ |v|^p. Unless `PURE`, its `tokenize` leaves `p` out; when `PURE` it
/// writes `p` and vouches for it. `M` only makes types that differ in nothing else.
struct PowSum<const PURE: bool, M = ()>(f64, std::marker::PhantomData<M>);

fn pow_sum<const PURE: bool, M>(p: f64) -> PowSum<PURE, M> {
    PowSum(p, std::marker::PhantomData)
}

impl<const PURE: bool, M: Send + Sync + 'static> Reduction for PowSum<PURE, M> {
    type In = f64;
    type Out = f64;
    type Partial = ArrayD<f64>;
    fn name(&self) -> &str {
        "powsum"
    }
    fn tokenize(&self, t: &mut Tokenizer) {
        if PURE {
            t.write_f64(self.0);
        }
    }
    fn is_pure(&self) -> bool {
        PURE
    }
    fn chunk(&self, b: &ArrayD<f64>, axes: &[usize], _: &[usize], _: &[usize]) -> ArrayD<f64> {
        let mut p = b.mapv(|v| v.abs().powf(self.0));
        for &a in axes {
            p = p.sum_axis(Axis(a)).insert_axis(Axis(a));
        }
        p
    }
    fn merge(&self, a: &ArrayD<f64>, b: &ArrayD<f64>) -> ArrayD<f64> {
        a + b
    }
    fn finish(&self, p: &ArrayD<f64>) -> ArrayD<f64> {
        p.clone()
    }
    fn nbytes(p: &ArrayD<f64>) -> usize {
        p.len() * 8
    }
}

#[test]
fn custom_reductions_keep_their_own_keys_unless_pure() {
    // A reduction whose `tokenize` leaves a parameter out gets keys of its own per call (two
    // computed together shared one result before); one that declares itself pure shares its
    // tasks with an equal call and not with another parameter; and two reduction types with
    // the same name and token do not meet.
    let x = BlockArray::<f64>::from_array(
        ArrayD::from_shape_fn(IxDyn(&[6, 4]), |i| i[0] as f64 - 2.5 + i[1] as f64),
        [4, 3],
    )
    .unwrap();
    let data = x.compute().unwrap();
    let want = |p: f64| data.mapv(|v| v.abs().powf(p)).sum_axis(Axis(0));
    fn red<R: Reduction<In = f64>>(x: &BlockArray<f64>, r: R) -> BlockArray<R::Out> {
        reduce(x, r, Some(&[0]), false, 2).unwrap()
    }
    let a = red(&x, pow_sum::<false, ()>(1.0));
    let b = red(&x, pow_sum::<false, ()>(2.0));
    assert_ne!(a.name(), b.name());
    let pa = red(&x, pow_sum::<true, ()>(1.0));
    let pa2 = red(&x, pow_sum::<true, ()>(1.0));
    let pb = red(&x, pow_sum::<true, ()>(2.0));
    assert_eq!(pa.name(), pa2.name());
    assert_ne!(pa.name(), pb.name());
    assert_ne!(pa.name(), a.name());
    // Another type with the same name and token.
    assert_ne!(pa.name(), red(&x, pow_sum::<true, u8>(1.0)).name());
    for sched in [
        blockarray::default_scheduler(),
        std::sync::Arc::new(SyncScheduler::new()),
    ] {
        let mut c = Computation::new();
        let hs = [&a, &b, &pa, &pa2, &pb].map(|y| c.add(y));
        let mut r = c.run(&*sched).unwrap();
        for (h, p) in hs.into_iter().zip([1.0, 2.0, 1.0, 1.0, 2.0]) {
            let (got, w) = (r.take(h).unwrap(), want(p));
            let close = got
                .iter()
                .zip(&w)
                .all(|(g, w)| (g - w).abs() <= 1e-12 * w.abs().max(1.0));
            assert!(close, "p = {p}: {got} != {w}");
        }
    }
}
