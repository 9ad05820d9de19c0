//! Which rank runs which task: a static partition every rank computes identically from the
//! plan alone (no communication), and the traffic it implies.
//!
//! # The heuristic
//!
//! Owner-computes over the plan's static order (ids `0..n`, every task after its
//! dependencies, one reduction branch finished before the next begins):
//!
//! 1. Tasks placed with the results ([`Placement::Results`]) run on rank 0 when results are
//!    gathered there, on every rank when every rank gets them; tasks placed
//!    [`First`](Placement::First) (writes into a file) on rank 0.
//! 2. Leaves (tasks without dependencies: sources, literals) are cut into `ranks` contiguous
//!    runs of the static order, of equal count: leaf `k` of `L` goes to rank `k·ranks/L`.
//!    Neighbours in the order are neighbours in the graph (the leaves of one reduction
//!    branch, the blocks one consumer reads together), so each run is a set of whole
//!    subtrees.
//! 3. Every other task goes, in order, to the rank already holding the most bytes of its
//!    inputs (predicted sizes, plus one byte per input so that graphs without sizes count
//!    edges): owner-computes, so only the inputs held elsewhere travel. Ties go to the rank
//!    with fewer tasks, then the lower rank.
//! 4. Balance: a rank may take at most `⌈m/ranks⌉ + ⌈m/(8·ranks)⌉` of the `m` non-leaf tasks
//!    of one array (tasks whose keys share a name), and at most 110 % of an even share of all
//!    non-leaf tasks; a task whose best rank is full goes to the best rank that is not.
//!    Without the caps a chain of consumers would follow its inputs onto one rank.
//!
//! A reduction tree's partial sums follow their leaves (only the top levels cross ranks); an
//! elementwise chain is fused into one task per block, so each block stays where it was made;
//! a contraction's tasks go where most of their operand blocks are. What the heuristic does
//! not do: weigh tasks by their cost (a contraction counts as one task, like an addition), or
//! revise a choice later (dask.distributed steals work at run time; this partition is
//! static, so a slow rank is not helped by the others).
//!
//! Cost: one pass over the tasks and their edges, O(n + E) time, plus O(ranks) for a task
//! whose best rank is full; memory O(n) plus one counter per (array, rank) pair in use.

use crate::Gather;
use dag_core::{Placement, Plan};
use rustc_hash::FxHashMap;

/// The owner of a task placed with the results when every rank gets the results: it runs on
/// every rank.
pub(crate) const EVERY_RANK: u32 = u32::MAX;

/// The rank that runs each task of `plan` ([`EVERY_RANK`] for tasks every rank runs).
pub(crate) fn assign(plan: &Plan, ranks: usize, gather: Gather) -> Vec<u32> {
    const UNSET: u32 = u32::MAX - 1;
    let n = plan.len();
    let ranks = ranks.max(1);
    let mut owner = vec![UNSET; n];
    let anywhere = |id: usize| plan.placement(id) == Placement::Anywhere;
    // 1. Tasks placed with the results, or on the first rank.
    for (id, o) in owner.iter_mut().enumerate() {
        *o = match (plan.placement(id), gather) {
            (Placement::Anywhere, _) => continue,
            (Placement::Results, Gather::All) => EVERY_RANK,
            (Placement::Results, Gather::Root) | (Placement::First, _) => 0,
        };
    }
    // 2. Leaves, in contiguous runs of the static order.
    let leaves: Vec<usize> = (0..n)
        .filter(|&id| anywhere(id) && plan.deps(id).is_empty())
        .collect();
    for (k, &id) in leaves.iter().enumerate() {
        owner[id] = (k * ranks / leaves.len()) as u32;
    }
    // 3 and 4. The rest, following their inputs' bytes, under the caps.
    let inner: Vec<usize> = (0..n)
        .filter(|&id| anywhere(id) && !plan.deps(id).is_empty())
        .collect();
    let mut group_of: FxHashMap<&str, u32> = FxHashMap::default();
    let mut group_size: Vec<usize> = Vec::new();
    let groups: Vec<u32> = inner
        .iter()
        .map(|&id| {
            let next = group_of.len() as u32;
            let g = *group_of.entry(plan.key(id).name()).or_insert(next);
            if g as usize == group_size.len() {
                group_size.push(0);
            }
            group_size[g as usize] += 1;
            g
        })
        .collect();
    let group_cap: Vec<usize> = group_size
        .iter()
        .map(|&m| m.div_ceil(ranks) + m.div_ceil(8 * ranks))
        .collect();
    let total_cap = (inner.len() as f64 / ranks as f64 * 1.1).ceil() as usize + 1;
    let mut load = vec![0usize; ranks];
    let mut group_load: FxHashMap<(u32, u32), usize> = FxHashMap::default();
    let mut scores: Vec<(u32, usize)> = Vec::new();
    for (&id, &g) in inner.iter().zip(&groups) {
        scores.clear();
        for &d in plan.deps(id) {
            let o = owner[d as usize];
            if o >= ranks as u32 {
                continue; // on every rank: no rank is closer to it
            }
            let w = plan.predicted_nbytes(d as usize) + 1;
            match scores.iter_mut().find(|(r, _)| *r == o) {
                Some((_, s)) => *s += w,
                None => scores.push((o, w)),
            }
        }
        let full = |r: u32, group_load: &FxHashMap<(u32, u32), usize>| {
            load[r as usize] >= total_cap
                || group_load.get(&(g, r)).copied().unwrap_or(0) >= group_cap[g as usize]
        };
        let better = |a: (u32, usize), b: (u32, usize)| {
            // Higher score, then fewer tasks, then the lower rank.
            (
                a.1,
                std::cmp::Reverse(load[a.0 as usize]),
                std::cmp::Reverse(a.0),
            ) > (
                b.1,
                std::cmp::Reverse(load[b.0 as usize]),
                std::cmp::Reverse(b.0),
            )
        };
        let mut best: Option<(u32, usize)> = None;
        for &c in &scores {
            if !full(c.0, &group_load) && best.is_none_or(|b| better(c, b)) {
                best = Some(c);
            }
        }
        let r = match best {
            Some((r, _)) => r,
            None => {
                // Every rank holding inputs is full (or none holds any): the least loaded
                // rank that is not full.
                (0..ranks as u32)
                    .filter(|&r| !full(r, &group_load))
                    .min_by_key(|&r| (load[r as usize], r))
                    .unwrap_or_else(|| {
                        (0..ranks as u32)
                            .min_by_key(|&r| (load[r as usize], r))
                            .expect("at least one rank")
                    })
            }
        };
        owner[id] = r;
        load[r as usize] += 1;
        *group_load.entry((g, r)).or_insert(0) += 1;
    }
    debug_assert!(owner.iter().all(|&o| o != UNSET));
    owner
}

/// For each task: the ranks other than its owner that run one of its readers, ascending.
/// (A task every rank runs is never sent.)
pub(crate) fn destinations(plan: &Plan, owner: &[u32], ranks: usize) -> Vec<Vec<u32>> {
    (0..plan.len())
        .map(|id| {
            let o = owner[id];
            if o == EVERY_RANK {
                return Vec::new();
            }
            let mut dests: Vec<u32> = Vec::new();
            for &t in plan.dependents(id) {
                let to = owner[t as usize];
                if to == EVERY_RANK {
                    dests = (0..ranks as u32).filter(|&r| r != o).collect();
                    break;
                }
                if to != o && !dests.contains(&to) {
                    dests.push(to);
                }
            }
            dests.sort_unstable();
            dests
        })
        .collect()
}

/// The traffic a partition implies, from the plan's predicted value sizes: what
/// [`MpiScheduler::predict`](crate::MpiScheduler::predict) reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traffic {
    /// Ranks the plan was partitioned over.
    pub ranks: usize,
    /// Tasks each rank runs (tasks every rank runs are counted on each).
    pub tasks: Vec<usize>,
    /// Values sent from one rank to another (each value once per receiving rank).
    pub values: usize,
    /// Their predicted bytes (the values' sizes, without framing).
    pub bytes: usize,
    /// Predicted bytes of the outputs gathered at the end (to rank 0, or to every rank).
    pub gathered_bytes: usize,
}

/// The traffic of running `plan` over `ranks` ranks.
pub(crate) fn traffic(plan: &Plan, ranks: usize, gather: Gather) -> Traffic {
    let owner = assign(plan, ranks, gather);
    let dests = destinations(plan, &owner, ranks);
    let mut tasks = vec![0usize; ranks.max(1)];
    for &o in &owner {
        if o == EVERY_RANK {
            tasks.iter_mut().for_each(|t| *t += 1);
        } else {
            tasks[o as usize] += 1;
        }
    }
    let (mut values, mut bytes) = (0, 0);
    for (id, d) in dests.iter().enumerate() {
        values += d.len();
        bytes += d.len() * plan.predicted_nbytes(id);
    }
    let mut gathered_bytes = 0;
    for &o in plan.outputs() {
        let (id, from) = (o as usize, owner[o as usize]);
        if from == EVERY_RANK {
            continue;
        }
        let receivers = match gather {
            Gather::Root => usize::from(from != 0 && !dests[id].contains(&0)),
            Gather::All => ranks - 1 - dests[id].len(),
        };
        gathered_bytes += receivers * plan.predicted_nbytes(id);
    }
    Traffic {
        ranks,
        tasks,
        values,
        bytes,
        gathered_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dag_core::{Graph, Key, Task, Value, synthetic};

    #[test]
    fn a_tree_sum_splits_into_whole_subtrees() {
        let (g, root) = synthetic::tree(4096, 8);
        let plan = Plan::new(&g, &[root]).unwrap();
        for ranks in [1, 2, 3, 4, 8] {
            let t = traffic(&plan, ranks, Gather::Root);
            assert_eq!(t.tasks.iter().sum::<usize>(), plan.len());
            let (lo, hi) = (t.tasks.iter().min().unwrap(), t.tasks.iter().max().unwrap());
            assert!(
                hi - lo <= plan.len() / ranks / 5 + 2,
                "{ranks} ranks: {t:?}"
            );
            // Only partial sums at the boundaries between the ranks' runs of leaves cross:
            // at most half a node's 8 children per level (4 levels) per boundary.
            assert!(
                t.values <= (ranks - 1) * 4 * 4 + ranks,
                "{ranks} ranks: {t:?}"
            );
        }
    }

    #[test]
    fn the_partition_depends_on_the_plan_only_and_covers_every_task() {
        let (g, root) = synthetic::tree(1000, 4);
        let plan = Plan::new(&g, &[root]).unwrap();
        let a = assign(&plan, 5, Gather::Root);
        assert_eq!(a, assign(&plan, 5, Gather::Root));
        assert!(a.iter().all(|&o| o < 5));
    }

    #[test]
    fn results_placed_tasks_go_to_rank_0_or_everywhere() {
        let mut g = Graph::new();
        let mut outs = Vec::new();
        for i in 0..8 {
            g.insert(Key::new("x", [i]), Task::literal(Value::new(i as u64)));
            let store = Task::new([Key::new("x", [i])], |_| Ok(Value::new(())))
                .with_placement(Placement::Results);
            g.insert(Key::new("store", [i]), store);
            outs.push(Key::new("store", [i]));
        }
        let plan = Plan::new(&g, &outs).unwrap();
        let root = assign(&plan, 4, Gather::Root);
        let all = assign(&plan, 4, Gather::All);
        for id in 0..plan.len() {
            if plan.key(id).name() == "store" {
                assert_eq!(root[id], 0);
                assert_eq!(all[id], EVERY_RANK);
            }
        }
        // The blocks made on ranks 1..3 travel to rank 0 (Root), or to every rank (All).
        assert_eq!(traffic(&plan, 4, Gather::Root).values, 6);
        assert_eq!(traffic(&plan, 4, Gather::All).values, 8 * 3);
        // Nothing is gathered at the end: the stores ran where the results are.
        assert_eq!(traffic(&plan, 4, Gather::Root).gathered_bytes, 0);
    }

    #[test]
    fn more_ranks_than_tasks_leave_ranks_empty() {
        let (g, root) = synthetic::chain(3);
        let plan = Plan::new(&g, &[root]).unwrap();
        let t = traffic(&plan, 8, Gather::Root);
        assert_eq!(t.tasks.iter().sum::<usize>(), 3);
        assert!(t.tasks.iter().filter(|&&c| c == 0).count() >= 5, "{t:?}");
    }
}
