//! Cancelled runs: a `Cancel` token stops a run from another thread; tasks running then finish,
//! no other starts, every thread is joined, every sink is aborted (nothing half-written), and
//! the run ends with an `Err` of kind `Cancelled`.

use crate::common::{schedulers, within};
use blockarray::{BlockArray, ChunkSink, Computation, ErrorKind};
use dag_core::Cancel;
use ndarray::ArrayD;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts what happens to it.
#[derive(Default)]
struct Counting {
    writes: AtomicUsize,
    commits: AtomicUsize,
    aborts: AtomicUsize,
}

impl ChunkSink<f64> for Counting {
    fn shape(&self) -> Vec<usize> {
        vec![4000]
    }
    fn write_block(&self, _: &[usize], _: &ArrayD<f64>) -> blockarray::Result<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn commit(&self) -> blockarray::Result<()> {
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn abort(&self) {
        self.aborts.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_cancelled_run_stops_early_and_aborts_its_sinks() {
    for (name, s) in schedulers() {
        // 4000 tasks of 2 ms each: 8 s of work, cancelled after 100 ms.
        let slow = BlockArray::<f64>::ones(&[4000], [1])
            .unwrap()
            .map_blocks("slow", None, |b, _| {
                std::thread::sleep(Duration::from_millis(2));
                Ok(b.clone())
            })
            .unwrap();
        let sink = Arc::new(Counting::default());
        let cancel = Cancel::new();
        let mut c = Computation::new();
        c.store(&slow, sink.clone()).unwrap();
        c.cancel_with(cancel.clone());
        let stopper = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                cancel.cancel();
            })
        };
        let s2 = s.clone();
        let e = within(30, move || c.run(&*s2).unwrap_err());
        stopper.join().unwrap();
        assert_eq!(e.kind(), ErrorKind::Cancelled, "{name}: {e}");
        assert!(e.to_string().contains("cancelled after"), "{name}: {e}");
        let writes = sink.writes.load(Ordering::Relaxed);
        assert!(writes < 4000, "{name}: the run went on ({writes} blocks)");
        assert_eq!(sink.commits.load(Ordering::Relaxed), 0, "{name}");
        assert_eq!(sink.aborts.load(Ordering::Relaxed), 1, "{name}");
    }
}

#[test]
fn a_token_cancelled_before_the_run_runs_nothing() {
    let sink = Arc::new(Counting::default());
    let cancel = Cancel::new();
    cancel.cancel();
    let mut c = Computation::new();
    let ones = BlockArray::<f64>::ones(&[4000], [100]).unwrap();
    c.store(&ones, sink.clone()).unwrap();
    c.cancel_with(cancel);
    let e = c
        .run(&sched_threaded::ThreadedScheduler::new())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    assert_eq!(sink.writes.load(Ordering::Relaxed), 0);
    assert_eq!(sink.aborts.load(Ordering::Relaxed), 1);
}
