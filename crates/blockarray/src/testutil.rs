//! Test helpers shared by the unit tests of several modules.

use proptest::prelude::*;

/// A random chunking of an axis of length `len` (dask's form: `[0]` when empty), cutting after
/// each position with probability `cut`.
pub(crate) fn axis_chunks(len: usize, cut: f64) -> BoxedStrategy<Vec<usize>> {
    if len == 0 {
        return Just(vec![0]).boxed();
    }
    proptest::collection::vec(prop::bool::weighted(cut), len - 1)
        .prop_map(|cuts| {
            let mut blocks = Vec::new();
            let mut run = 1;
            for cut in cuts {
                if cut {
                    blocks.push(run);
                    run = 1;
                } else {
                    run += 1;
                }
            }
            blocks.push(run);
            blocks
        })
        .boxed()
}
