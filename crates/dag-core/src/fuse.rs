//! Task fusion over a numbered DAG: the one implementation behind [`Graph::fuse_where`] and
//! behind graph builders that fuse before any [`Graph`] exists (blockarray's lowering).
//!
//! # Design notes
//!
//! A builder describes its tasks as numbers `0..len` with dependencies by number
//! ([`FusionSource`]), marks which tasks are *absorbed* — run inside their single dependent —
//! and [`fuse_into`] writes the resulting tasks into a graph. Absorption is the caller's
//! policy; [`single_dependents`] gives what every policy needs (the one distinct dependent of
//! each task). A fused task runs its absorbed producers in post-order, then its own body,
//! dropping each intermediate value as soon as its one reader has run; an error inside names
//! the stage it came from.

use crate::task::Body;
use crate::{Graph, Key, Placement, Task, Value};
use smallvec::SmallVec;
use std::sync::Arc;

/// Tasks numbered `0..len()`, as fusion reads them.
pub trait FusionSource {
    /// The number of tasks.
    fn len(&self) -> usize;
    /// Whether there are no tasks.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The tasks task `p` reads, by number, in the order its body receives their values.
    fn deps(&self, p: usize) -> &[u32];
    /// Task `p`'s key.
    fn key(&self, p: usize) -> Key;
    /// Task `p`'s body.
    fn body(&self, p: usize) -> Body;
    /// Task `p` as it is when nothing is fused into it.
    fn task(&self, p: usize) -> Task;
    /// What listings call task `p`: its label, or its key's prefix. Fused tasks are labelled
    /// with their stages' names.
    fn name(&self, p: usize) -> &str;
    /// The predicted size of position `p`'s value (a fused task keeps its root's), if known.
    fn nbytes(&self, _p: usize) -> Option<usize> {
        None
    }
    /// The bytes position `p` holds while it runs on top of its inputs and its value
    /// ([`Task::transient`]); fusion adds the intermediate values of the stages it runs.
    fn transient(&self, _p: usize) -> usize {
        0
    }
    /// Where position `p` runs when a plan is spread over processes (a fused task keeps its
    /// root's [`Placement`]).
    fn placement(&self, _p: usize) -> Placement {
        Placement::Anywhere
    }
}

/// For each task, its one distinct dependent (a task listing it more than once counts once),
/// or `None` when it has none or several.
pub fn single_dependents(src: &dyn FusionSource) -> Vec<Option<u32>> {
    const NONE: u32 = u32::MAX;
    const MANY: u32 = u32::MAX - 1;
    let mut only = vec![NONE; src.len()];
    for p in 0..src.len() {
        for &d in src.deps(p) {
            let slot = &mut only[d as usize];
            *slot = match *slot {
                NONE => p as u32,
                x if x == p as u32 => x,
                _ => MANY,
            };
        }
    }
    only.into_iter()
        .map(|d| (d != NONE && d != MANY).then_some(d))
        .collect()
}

/// Insert every task of `src` that is not `absorbed` into `graph`, in number order, each with
/// its absorbed producers fused into it. Every absorbed task must have exactly one distinct
/// dependent (see [`single_dependents`]) and must not be an output.
pub fn fuse_into(src: &dyn FusionSource, absorbed: &[bool], graph: &mut Graph) {
    let mut slot = vec![UNSET; src.len()];
    // The walk's buffers are reused from one fused task to the next: only what the task
    // keeps (its stages and dependencies) is allocated per task.
    let mut program = Program::default();
    // Fused tasks of one chain of nodes share their label, made once per run of tasks with
    // the same stage names.
    // (No names yet: every fused task has at least one stage, so the first makes a label.)
    let mut last_names: SmallVec<[&str; 8]> = SmallVec::new();
    let mut last_label: Arc<str> = Arc::from("");
    let mut graph = graph.inserter();
    for p in 0..src.len() {
        if absorbed[p] {
            continue;
        }
        if !src.deps(p).iter().any(|&d| absorbed[d as usize]) {
            graph.insert(src.key(p), src.task(p));
            continue;
        }
        program.build(p, src, absorbed, &mut slot);
        let deps = program.inputs.iter().map(|&d| src.key(d)).collect();
        let transient = program.transient(src);
        let same = last_names.len() == program.stages.len()
            && program
                .stages
                .iter()
                .zip(&last_names)
                .all(|(st, &n)| src.name(st.pos) == n);
        if !same {
            last_names = program.stages.iter().map(|st| src.name(st.pos)).collect();
            last_label = fused_label(&last_names).into();
        }
        let stages: Vec<(Key, Body, Args)> = program
            .stages
            .iter()
            .map(|st| (src.key(st.pos), src.body(st.pos), st.args.clone()))
            .collect();
        let body = Body::Func(Arc::new(move |inputs: &[Value]| {
            run_program(&stages, inputs)
        }));
        graph.insert(
            src.key(p),
            Task::from_parts(
                deps,
                body,
                Some(last_label.clone()),
                src.nbytes(p),
                transient,
                src.placement(p),
            ),
        );
    }
}

/// Where a fused stage takes an argument from: the fused task's inputs, or an earlier stage.
#[derive(Clone, Copy)]
enum Arg {
    Input(u32),
    Stage(u32),
}

/// A stage's arguments (inline for the usual few).
type Args = SmallVec<[Arg; 4]>;

struct Stage {
    pos: usize,
    args: Args,
}

/// The stages of one fused task in execution order (producers first, the consumer last) and
/// its external inputs (task numbers), with the walk's stack; cleared and refilled for each
/// fused task.
#[derive(Default)]
struct Program {
    stages: Vec<Stage>,
    inputs: Vec<usize>,
    stack: Vec<(usize, usize)>,
    /// Scratch for [`Program::transient`]: the bytes of each stage's value still held.
    held: Vec<usize>,
}

impl Program {
    /// The most bytes the program holds at once on top of the fused task's inputs and its
    /// value, as [`run_program`] runs it: the values of stages not yet read, the stage
    /// running, its output (unless it is the last stage, whose value is the task's) and its
    /// own transient bytes. Without this, a memory check would see a source block fused into
    /// its reduction as the reduction's few bytes, and let a task allocate terabytes.
    fn transient(&mut self, src: &dyn FusionSource) -> usize {
        let last = self.stages.len() - 1;
        let held = &mut self.held;
        held.clear();
        held.resize(self.stages.len(), 0);
        let (mut live, mut peak) = (0usize, 0usize);
        for (i, st) in self.stages.iter().enumerate() {
            let out = if i == last {
                0
            } else {
                src.nbytes(st.pos).unwrap_or(0)
            };
            let running = live
                .saturating_add(src.transient(st.pos))
                .saturating_add(out);
            peak = peak.max(running);
            for a in &st.args {
                if let Arg::Stage(j) = *a {
                    live = live.saturating_sub(std::mem::take(&mut held[j as usize]));
                }
            }
            held[i] = out;
            live = live.saturating_add(out);
        }
        peak
    }
}

/// An unused entry of [`Program::build`]'s scratch space.
const UNSET: u32 = u32::MAX;

impl Program {
    /// Post-order over the absorbed producers of `root`, iterative so that a fused chain of a
    /// million tasks does not overflow the stack. `slot` (one entry per task, all [`UNSET`])
    /// is scratch space, left as it was found: while building, it holds each reached task's
    /// stage number (absorbed producers) or input number (the rest).
    fn build(&mut self, root: usize, src: &dyn FusionSource, absorbed: &[bool], slot: &mut [u32]) {
        let Program {
            stages,
            inputs,
            stack,
            ..
        } = self;
        stages.clear();
        inputs.clear();
        stack.clear();
        stack.push((root, 0));
        while let Some(&mut (p, ref mut next)) = stack.last_mut() {
            let deps = src.deps(p);
            if *next < deps.len() {
                let d = deps[*next] as usize;
                *next += 1;
                if absorbed[d] && slot[d] == UNSET {
                    stack.push((d, 0));
                }
                continue;
            }
            stack.pop();
            let args = deps
                .iter()
                .map(|&d| {
                    let d = d as usize;
                    if absorbed[d] {
                        Arg::Stage(slot[d])
                    } else {
                        if slot[d] == UNSET {
                            slot[d] = inputs.len() as u32;
                            inputs.push(d);
                        }
                        Arg::Input(slot[d])
                    }
                })
                .collect();
            slot[p] = stages.len() as u32;
            stages.push(Stage { pos: p, args });
        }
        for &d in inputs.iter() {
            slot[d] = UNSET;
        }
        for st in stages.iter() {
            slot[st.pos] = UNSET;
        }
    }
}

fn run_program(stages: &[(Key, Body, Args)], inputs: &[Value]) -> crate::TaskResult {
    let mut values: Vec<Option<Value>> = vec![None; stages.len()];
    let mut args: Vec<Value> = Vec::new();
    let last = stages.len() - 1;
    for (i, (key, body, refs)) in stages.iter().enumerate() {
        args.clear();
        for r in refs {
            args.push(match *r {
                Arg::Input(j) => inputs[j as usize].clone(),
                Arg::Stage(j) => values[j as usize]
                    .clone()
                    .expect("a stage runs after the stages it reads"),
            });
        }
        let out = body.call(&args);
        // Every absorbed stage has exactly one consumer: free what this stage read.
        for r in refs {
            if let Arg::Stage(j) = *r {
                values[j as usize] = None;
            }
        }
        match out {
            Ok(v) if i == last => return Ok(v),
            Ok(v) => values[i] = Some(v),
            Err(e) if i == last => return Err(e),
            Err(e) => return Err(format!("in fused stage {key}: {e}").into()),
        }
    }
    unreachable!("a program has at least one stage")
}

fn fused_label(labels: &[&str]) -> String {
    let n = labels.len();
    if n <= 4 {
        labels.join("+")
    } else {
        format!("{}+…+{} ({n} fused)", labels[0], labels[n - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tasks `0..n` with given dependencies; each adds 1 to the sum of its inputs. Named
    /// `"t"`, or by the second field where it has an entry.
    struct Numbered(Vec<Vec<u32>>, Vec<&'static str>);

    impl FusionSource for Numbered {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn deps(&self, p: usize) -> &[u32] {
            &self.0[p]
        }
        fn key(&self, p: usize) -> Key {
            Key::new("t", [p])
        }
        fn body(&self, _: usize) -> Body {
            Body::Func(Arc::new(|v: &[Value]| {
                let mut s = 1i64;
                for x in v {
                    s += x.get::<i64>()?;
                }
                Ok(Value::new(s))
            }))
        }
        fn task(&self, p: usize) -> Task {
            let deps = self.0[p].iter().map(|&d| self.key(d as usize)).collect();
            Task::from_parts(deps, self.body(p), None, None, 0, Placement::Anywhere)
        }
        fn name(&self, p: usize) -> &str {
            self.1.get(p).copied().unwrap_or("t")
        }
    }

    #[test]
    fn fuses_producers_with_one_dependent_into_it() {
        // 0 → 1 → 3, 2 → 3 and 2 → 4: 1 has one dependent (3), listed twice; 2 has two.
        let src = Numbered(
            vec![vec![], vec![0], vec![], vec![1, 1, 2], vec![2]],
            vec![],
        );
        let only = single_dependents(&src);
        assert_eq!(only, [Some(1), Some(3), None, None, None]);
        let absorbed = [true, true, false, false, false];
        let mut g = Graph::new();
        fuse_into(&src, &absorbed, &mut g);
        assert_eq!(g.len(), 3);
        let three = g.get(&Key::new("t", [3])).expect("t3 stays");
        assert_eq!(three.deps(), [Key::new("t", [2])]);
        assert_eq!(three.label(), Some("t+t+t"));
        // t0 = 1, t1 = 2, t2 = 1, t3 = 1 + 2 + 2 + 1 = 6.
        let out = three
            .call(&[Value::new(1i64)])
            .expect("runs")
            .get::<i64>()
            .copied()
            .expect("i64");
        assert_eq!(out, 6);
    }

    #[test]
    fn fused_tasks_are_labelled_by_their_own_stages_when_chains_alternate() {
        // Pairs (0 → 1), (2 → 3), (4 → 5), (6 → 7), (8 → 9 → 10): the producers are named
        // a, b, a, a, then a and b; the consumers c.
        let deps = vec![
            vec![],
            vec![0],
            vec![],
            vec![2],
            vec![],
            vec![4],
            vec![],
            vec![6],
            vec![],
            vec![8],
            vec![9],
        ];
        let names = vec!["a", "c", "b", "c", "a", "c", "a", "c", "a", "b", "c"];
        let src = Numbered(deps, names);
        let absorbed: Vec<bool> = (0..11).map(|p| ![1, 3, 5, 7, 10].contains(&p)).collect();
        let mut g = Graph::new();
        fuse_into(&src, &absorbed, &mut g);
        let label = |p: usize| g.get(&Key::new("t", [p])).and_then(|t| t.label());
        assert_eq!(
            [label(1), label(3), label(5), label(7), label(10)],
            [
                Some("a+c"),
                Some("b+c"),
                Some("a+c"),
                Some("a+c"),
                Some("a+b+c")
            ]
        );
    }
}
