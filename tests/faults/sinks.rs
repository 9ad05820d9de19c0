//! Sinks: a store that would write in place into what its own computation reads is refused
//! before anything runs (blocks written early would be read back by later tasks), and a
//! run's sinks change all together or not at all.

use blockarray::{BlockArray, ChunkSink, ChunkSource, Computation, ErrorKind, s};
use dag_core::Tokenizer;
use ndarray::{ArrayD, IxDyn};
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// An in-memory "file": a vector that a source reads and an in-place sink writes.
struct Shared {
    name: &'static str,
    data: Mutex<Vec<f64>>,
}

impl ChunkSource<f64> for Shared {
    fn shape(&self) -> Vec<usize> {
        vec![self.data.lock().unwrap().len()]
    }
    fn read(&self, region: &[Range<usize>]) -> blockarray::Result<ArrayD<f64>> {
        let d = self.data.lock().unwrap();
        Ok(
            ArrayD::from_shape_vec(IxDyn(&[region[0].len()]), d[region[0].clone()].to_vec())
                .unwrap(),
        )
    }
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_str(self.name);
    }
    fn name(&self) -> &str {
        "shared"
    }
    fn resource(&self) -> Option<String> {
        Some(format!("memory:{}", self.name))
    }
}

/// Writes into a [`Shared`] in place.
struct InPlace(Arc<Shared>);

impl ChunkSink<f64> for InPlace {
    fn shape(&self) -> Vec<usize> {
        self.0.shape()
    }
    fn write_block(&self, offset: &[usize], block: &ArrayD<f64>) -> blockarray::Result<()> {
        let mut d = self.0.data.lock().unwrap();
        for (i, v) in block.iter().enumerate() {
            d[offset[0] + i] = *v;
        }
        Ok(())
    }
    fn describe(&self) -> String {
        format!("shared vector {}", self.0.name)
    }
    fn writes_in_place(&self) -> Option<String> {
        self.0.resource()
    }
}

fn shared(name: &'static str, n: usize) -> Arc<Shared> {
    Arc::new(Shared {
        name,
        data: Mutex::new((0..n).map(|i| i as f64).collect()),
    })
}

#[test]
fn an_in_place_store_into_what_the_computation_reads_is_refused_and_writes_nothing() {
    let x_data = shared("x", 100);
    let x = BlockArray::from_source(x_data.clone(), Some([10].into())).unwrap();
    let reversed = x.slice(s![..;-1]).unwrap();
    let err = reversed
        .store(Arc::new(InPlace(x_data.clone())))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    let msg = err.to_string();
    assert!(
        msg.contains("shared vector x") && msg.contains("reads it"),
        "{msg}"
    );
    // Nothing was written.
    assert_eq!(
        *x_data.data.lock().unwrap(),
        (0..100).map(|i| i as f64).collect::<Vec<_>>()
    );
    // Reading it through a reduction in the same computation is refused too.
    let mut c = Computation::new();
    c.add(&x.sum(None, false).unwrap());
    c.store(
        &BlockArray::<f64>::ones(&[100], [10]).unwrap(),
        Arc::new(InPlace(x_data.clone())),
    )
    .unwrap();
    assert!(c.run(&*blockarray::default_scheduler()).is_err());
    assert_eq!(x_data.data.lock().unwrap()[5], 5.0);
    // In place into something the computation does not read is fine.
    let y_data = shared("y", 100);
    reversed.store(Arc::new(InPlace(y_data.clone()))).unwrap();
    assert_eq!(y_data.data.lock().unwrap()[0], 99.0);
    // The same storage written in place twice in one computation is refused.
    let z_data = shared("z", 100);
    let mut c = Computation::new();
    let ones = BlockArray::<f64>::ones(&[100], [10]).unwrap();
    c.store(&ones, Arc::new(InPlace(z_data.clone()))).unwrap();
    c.store(&ones, Arc::new(InPlace(z_data.clone()))).unwrap();
    let err = c.run(&*blockarray::default_scheduler()).unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
}
