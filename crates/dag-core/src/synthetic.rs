//! Synthetic graphs of trivial tasks, for measuring scheduler overhead and for tests.
//!
//! Every task computes a `u64`, so results are easy to check:
//! [`independent`] tasks return their index, a [`chain`] adds one per link, and a [`tree`]
//! sums its leaves (leaf `i` is `i`).

use crate::{Graph, Key, Task, TaskResult, Value};
use std::sync::Arc;

fn sum_u64(values: &[Value]) -> TaskResult {
    let mut s = 0u64;
    for v in values {
        s = s.wrapping_add(*v.get::<u64>()?);
    }
    Ok(Value::new(s))
}

/// `n` tasks with no dependencies; task `i` returns `i`. Returns the graph and all `n` keys.
pub fn independent(n: usize) -> (Graph, Vec<Key>) {
    let name: Arc<str> = Arc::from("leaf");
    let mut g = Graph::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut ins = g.inserter();
    for i in 0..n {
        let k = Key::with_shared_name(&name, &[i]);
        ins.insert(k.clone(), Task::new([], move |_| Ok(Value::new(i as u64))));
        keys.push(k);
    }
    (g, keys)
}

/// A chain of `n` tasks (`n ≥ 1`): the first returns 0, each next one adds 1, so the last
/// returns `n - 1`. Returns the graph and the last key.
pub fn chain(n: usize) -> (Graph, Key) {
    let name: Arc<str> = Arc::from("link");
    let mut g = Graph::with_capacity(n);
    let mut ins = g.inserter();
    ins.insert(
        Key::with_shared_name(&name, &[0]),
        Task::new([], |_| Ok(Value::new(0u64))),
    );
    for i in 1..n.max(1) {
        ins.insert(
            Key::with_shared_name(&name, &[i]),
            Task::new([Key::with_shared_name(&name, &[i - 1])], |v| {
                Ok(Value::new(v[0].get::<u64>()? + 1))
            }),
        );
    }
    (g, Key::with_shared_name(&name, &[n.max(1) - 1]))
}

/// A tree reduction: `leaves` leaf tasks (leaf `i` returns `i`), summed in groups of `fanin`
/// level by level down to one root. Returns the graph and the root key; the root's value is
/// `leaves * (leaves - 1) / 2`.
///
/// ```
/// let (g, root) = dag_core::synthetic::tree(100, 8);
/// assert_eq!(g.len(), 100 + 13 + 2 + 1);
/// # let _ = root;
/// ```
pub fn tree(leaves: usize, fanin: usize) -> (Graph, Key) {
    tree_with(leaves, fanin, |i| Value::new(i as u64))
}

/// Like [`tree`], with leaf `i`'s value given by `leaf(i)` (which must hold a `u64`), for
/// example to declare large leaf sizes with [`Value::with_nbytes`].
pub fn tree_with<F>(leaves: usize, fanin: usize, leaf: F) -> (Graph, Key)
where
    F: Fn(usize) -> Value + Send + Sync + 'static,
{
    let fanin = fanin.max(2);
    let leaves = leaves.max(1);
    let mut g = Graph::with_capacity(leaves + leaves / (fanin - 1) + 1);
    let leaf = Arc::new(leaf);
    let mut ins = g.inserter();
    // Each level's keys are made from its name and their number, not kept in a list.
    let mut name: Arc<str> = Arc::from("leaf");
    for i in 0..leaves {
        let leaf = Arc::clone(&leaf);
        ins.insert(
            Key::with_shared_name(&name, &[i]),
            Task::new([], move |_| Ok(leaf(i))),
        );
    }
    let (mut width, mut depth) = (leaves, 0);
    while width > 1 {
        let below = name;
        name = Arc::from(format!("sum{depth}"));
        for j in 0..width.div_ceil(fanin) {
            let deps = (j * fanin..((j + 1) * fanin).min(width))
                .map(|d| Key::with_shared_name(&below, &[d]));
            ins.insert(Key::with_shared_name(&name, &[j]), Task::new(deps, sum_u64));
        }
        width = width.div_ceil(fanin);
        depth += 1;
    }
    (g, Key::with_shared_name(&name, &[0]))
}
