//! Sizes: a result or a persist that cannot fit in memory is refused with an `Err` before
//! anything runs (it used to abort the process in the allocator).

use blockarray::{BlockArray, Computation, ErrorKind};

#[test]
fn a_result_larger_than_memory_is_refused_before_running() {
    let x = BlockArray::<f64>::ones(&[200_000, 200_000], [10_000, 10_000]).unwrap();
    let e = x.compute().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Memory);
    let msg = e.to_string();
    assert!(
        msg.contains("320.00 GB") && msg.contains("available"),
        "{msg}"
    );
    // A reduction of it is fine (and cheap: only the first block row is generated).
    let first = x.slice(blockarray::s![0, ..3]).unwrap().compute().unwrap();
    assert_eq!(first.len(), 3);
}

#[test]
fn a_persist_larger_than_memory_is_refused_before_running() {
    let x = BlockArray::<f32>::ones(&[100_000, 100_000], [10_000, 10_000]).unwrap();
    let e = x.persist().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Memory);
    assert!(e.to_string().contains("40.00 GB"), "{e}");
}

#[test]
fn several_results_are_counted_together_and_nothing_is_allocated_before_the_run() {
    let available = dag_core::available_memory().expect("linux");
    // Two results of 60 % of the memory available each: either alone would fit.
    let n = (available / 8) * 6 / 10;
    let x = BlockArray::<f64>::zeros(&[n], [n / 8 + 1]).unwrap();
    let mut c = Computation::new();
    let _a = c.add(&x);
    let _b = c.add(&(&x + 1.0));
    // Adding allocated nothing (this process would be using 120 % of the memory otherwise).
    let e = c.run(&*blockarray::default_scheduler()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Memory);
    assert!(e.to_string().contains("the 2 results"), "{e}");
}
