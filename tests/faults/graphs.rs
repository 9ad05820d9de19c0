//! Huge and degenerate graphs: empty arrays, zero-length axes, 0-d arrays, empty and
//! single-task graphs, very deep and very wide graphs — each computes (or is refused with an
//! `Err` saying why) under every scheduler, never panics or hangs.

use crate::common::{schedulers, within};
use blockarray::{BlockArray, Computation, ErrorKind, s};
use dag_core::{Graph, Key, Task, Value};

#[test]
fn empty_and_zero_dimensional_arrays_compute_everywhere() {
    for (name, sch) in schedulers() {
        let empty = BlockArray::<f64>::ones(&[0, 5], [3, 2]).unwrap();
        assert_eq!(
            empty.compute_with(&*sch).unwrap().shape(),
            &[0, 5],
            "{name}"
        );
        assert_eq!(
            empty.sum(None, false).unwrap().compute_with(&*sch).unwrap()[[]],
            0.0
        );
        assert!(
            empty
                .mean(Some(&[0]), false)
                .unwrap()
                .compute_with(&*sch)
                .unwrap()
                .iter()
                .all(|v| v.is_nan())
        );
        let scalar = BlockArray::<f64>::full(&[], 3.0, Vec::<usize>::new()).unwrap();
        assert_eq!(
            (&scalar * 2.0).compute_with(&*sch).unwrap()[[]],
            6.0,
            "{name}"
        );
        let sliced = BlockArray::<f64>::ones(&[10], [3])
            .unwrap()
            .slice(s![5..5])
            .unwrap();
        assert_eq!(sliced.compute_with(&*sch).unwrap().len(), 0, "{name}");
        // A computation with nothing in it runs and returns.
        Computation::new().run(&*sch).unwrap();
    }
}

#[test]
fn an_empty_graph_and_a_literal_compute_everywhere() {
    for (name, sch) in schedulers() {
        let g = Graph::new();
        assert!(sch.compute(&g, &[]).unwrap().is_empty(), "{name}");
        let mut g = Graph::new();
        g.insert(Key::scalar("x"), Task::literal(Value::new(7u64)));
        let v = sch
            .compute(&g, &[Key::scalar("x"), Key::scalar("x")])
            .unwrap();
        assert_eq!(*v[1].get::<u64>().unwrap(), 7, "{name}");
        // A missing output is an error naming it, not a panic.
        let e = sch.compute(&g, &[Key::scalar("nope")]).unwrap_err();
        assert!(e.to_string().contains("nope"), "{name}: {e}");
    }
}

#[test]
fn deep_and_wide_graphs_finish_under_every_scheduler() {
    for (name, sch) in schedulers() {
        let sch2 = sch.clone();
        within(120, move || {
            // A 200,000-task chain and a 200,000-leaf fan-in to one task.
            let (g, out) = dag_core::synthetic::chain(200_000);
            let v = sch2.compute(&g, &[out]).unwrap();
            assert_eq!(*v[0].get::<u64>().unwrap(), 199_999);
            let mut g = Graph::new();
            let leaves: Vec<Key> = (0..200_000).map(|i| Key::new("leaf", [i])).collect();
            for k in &leaves {
                g.insert(k.clone(), Task::literal(Value::new(1u64)));
            }
            g.insert(
                Key::scalar("all"),
                Task::new(leaves, |v| Ok(Value::new(v.len() as u64))),
            );
            let v = sch2.compute(&g, &[Key::scalar("all")]).unwrap();
            assert_eq!(*v[0].get::<u64>().unwrap(), 200_000);
        });
        let _ = name;
    }
}

#[test]
fn an_array_of_a_million_blocks_is_refused_under_a_small_task_limit() {
    let x = BlockArray::<f64>::ones(&[1000, 1000], [1, 1]).unwrap();
    let mut c = Computation::new();
    c.add(&x.sum(None, false).unwrap());
    c.max_tasks(100_000);
    let e = c.run(&*blockarray::default_scheduler()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Memory);
    assert!(e.to_string().contains("1000000 blocks"), "{e}");
}

/// A user's node whose block reads its own blocks ([`BlockTask::SELF`]): reading the block
/// before computes (a running count), and reading the block itself is a cycle, refused with
/// an `Err` under every scheduler, not a hang.
#[test]
fn a_node_reading_its_own_blocks_computes_or_is_refused_as_a_cycle() {
    use blockarray::Chunks;
    use blockarray::ext::{BlockTask, Meta, Node, Tokenizer, block_ref, block_value};
    use dag_core::BlockIndex;
    use ndarray::ArrayD;
    use std::sync::Arc;

    /// Block `j` holds `j + 1` in every element, read from block `j - back` plus one
    /// (`back` = 0 makes a block read itself).
    struct Count {
        meta: Meta,
        back: usize,
    }
    impl Node for Count {
        fn meta(&self) -> &Meta {
            &self.meta
        }
        fn inputs(&self) -> Vec<Arc<dyn Node>> {
            Vec::new()
        }
        fn blockwise(&self) -> bool {
            false
        }
        fn block(&self, index: &[usize]) -> BlockTask {
            let shape = self.meta.chunks.block_shape(index);
            let deps = match index[0].checked_sub(self.back) {
                Some(k) if index[0] > 0 || self.back == 0 => {
                    vec![(BlockTask::SELF, BlockIndex::from_slice(&[k]))]
                }
                _ => Vec::new(),
            };
            BlockTask {
                deps,
                func: Arc::new(move |v: &[Value]| {
                    let before = match v.first() {
                        Some(b) => block_ref::<f64>(b)?[[0]],
                        None => 0.0,
                    };
                    let out = ArrayD::from_elem(ndarray::IxDyn(&shape), before + 1.0);
                    Ok(block_value(out))
                }),
            }
        }
    }
    let count = |back: usize| {
        let mut t = Tokenizer::new();
        t.write_usize(back);
        let chunks = Chunks::from_blocks(vec![vec![2, 2, 2]]).unwrap();
        let meta = Meta::new::<f64>("count", t, chunks);
        BlockArray::<f64>::from_node(Arc::new(Count { meta, back })).unwrap()
    };
    for (name, sched) in schedulers() {
        let running = within(30, {
            let (x, s) = (count(1), sched.clone());
            move || x.compute_with(&*s)
        });
        let want = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
        assert_eq!(running.unwrap().into_raw_vec_and_offset().0, want, "{name}");
        let cycle = within(30, {
            let (x, s) = (count(0), sched.clone());
            move || x.compute_with(&*s)
        });
        let e = cycle.unwrap_err();
        assert!(e.to_string().contains("cycle"), "{name}: {e}");
    }
}
