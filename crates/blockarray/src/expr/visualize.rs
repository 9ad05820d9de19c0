//! Drawing what a computation does: the graph of operations (one node per array operation,
//! with its shape, blocks and bytes) and the task graph, as Graphviz DOT text or drawn to SVG,
//! PNG or PDF by Graphviz (`dag_core::diagnostics::render_dot`).
//!
//! The graph of operations is the one to look at for big arrays: its size is the number of
//! operations in the expression, whatever the number of blocks. The task graph has a node per
//! task and is drawn only up to [`MAX_DRAWN_TASKS`] tasks (Graphviz takes minutes beyond, and
//! the picture is a blot); its DOT text is always available.

use crate::expr::array::Node;
use crate::expr::lower::{Computation, nodes_of};
use crate::{BlockArray, Element, Error, Result};
use dag_core::Graph;
use rustc_hash::FxHashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

/// The most tasks [`BlockArray::visualize`] and [`Computation::visualize`] draw through
/// Graphviz; larger task graphs can still be written as `.dot` text.
pub const MAX_DRAWN_TASKS: usize = 2_000;

/// A DOT string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `(a, b)`-style tuples for labels.
fn tuple(v: &[usize]) -> String {
    crate::error::fmt_shape(v)
}

/// The graph of operations reachable from `roots` in DOT: one box per node (operation, shape,
/// element type, blocks and their largest shape, bytes), an edge from each input to the node
/// reading it. Nodes are drawn inputs first, top to bottom.
pub(crate) fn operations_dot(roots: &[Arc<dyn Node>]) -> String {
    let nodes = nodes_of(roots);
    let mut id: FxHashMap<Arc<str>, usize> = FxHashMap::default();
    let mut out = String::from(
        "digraph operations {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", \
         fillcolor=\"#eef3fb\", color=\"#4e79a7\", fontname=\"Helvetica\", fontsize=10];\n  \
         edge [color=\"#888888\"];\n",
    );
    for (i, n) in nodes.iter().enumerate() {
        let m = n.meta();
        id.insert(m.name.clone(), i);
        let nbytes = crate::plan::chunks::shape_bytes(m.shape(), m.itemsize);
        let blocks = m.chunks.nblocks();
        let bytes = if m.op() == "store" {
            format!("writes {}", dag_core::fmt_bytes(nbytes))
        } else {
            dag_core::fmt_bytes(nbytes)
        };
        let label = format!(
            "{}\n{} {}\n{} block{} of up to {}\n{}",
            m.op(),
            tuple(m.shape()),
            m.dtype,
            blocks,
            if blocks == 1 { "" } else { "s" },
            tuple(&m.chunks.max_block_shape()),
            bytes
        );
        let roots_fill = if roots.iter().any(|r| r.meta().name == m.name) {
            ", fillcolor=\"#fdebd3\", color=\"#f28e2b\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  n{i} [label={}, tooltip={}{roots_fill}];",
            quote(&label),
            quote(&m.name)
        );
    }
    for (i, n) in nodes.iter().enumerate() {
        for input in n.inputs() {
            if let Some(j) = id.get(&input.meta().name) {
                let _ = writeln!(out, "  n{j} -> n{i};");
            }
        }
    }
    out.push_str("}\n");
    out
}

/// Write `dot` to `path` (text or drawn, by extension), as a blockarray error.
fn render(dot: &str, path: &Path) -> Result<()> {
    dag_core::diagnostics::render_dot(dot, path).map_err(|e| Error::io(e.to_string()))
}

/// Draw the task graph `graph` to `path`, refusing to draw (not to write as text) more than
/// [`MAX_DRAWN_TASKS`] tasks.
fn render_tasks(graph: &Graph, path: &Path) -> Result<()> {
    let text = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("dot") || e.eq_ignore_ascii_case("gv"));
    if !text && graph.len() > MAX_DRAWN_TASKS {
        return Err(Error::graph(format!(
            "the task graph has {} tasks, too many to draw into {} (at most {MAX_DRAWN_TASKS}): \
             draw the graph of operations with visualize_operations, or write the task graph \
             as .dot text",
            graph.len(),
            path.display()
        )));
    }
    render(&graph.to_dot(), path)
}

impl<T: Element> BlockArray<T> {
    /// The graph of operations in Graphviz DOT: one node per array operation of the
    /// expression (its shape, element type, blocks and bytes), however many blocks there are
    /// — dask's high-level graph.
    ///
    /// ```
    /// use blockarray::{BlockArray, s};
    /// let x = BlockArray::<f64>::ones(&[10_000, 10_000], [1000, 1000])?;
    /// let y = (&x + &x.t())?.slice(s![..;2, 5000..])?.mean(Some(&[1]), false)?;
    /// let dot = y.operations_dot();
    /// assert!(dot.starts_with("digraph operations"));
    /// // The slice was pushed into the source: 50 of x's 100 blocks are ever made, twice
    /// // (x and the part of it x.T reads).
    /// assert_eq!(dot.matches(r#"label="ones"#).count(), 2);
    /// assert!(dot.contains("50 blocks"));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn operations_dot(&self) -> String {
        operations_dot(std::slice::from_ref(&self.node))
    }

    /// Draw the graph of operations ([`operations_dot`](Self::operations_dot)) to `path`:
    /// `.svg`, `.png` or `.pdf` through Graphviz's `dot` (installed by `cargo xtask deps`),
    /// or `.dot` for the text. An `Err` names the file and, when Graphviz is missing, how to
    /// get it.
    ///
    /// ```
    /// let x = blockarray::BlockArray::<f64>::ones(&[100, 100], [10, 10])?;
    /// let path = std::env::temp_dir().join(format!("ops-doc-{}.dot", std::process::id()));
    /// x.sum(None, false)?.visualize_operations(&path)?;
    /// assert!(std::fs::read_to_string(&path)?.contains("sum"));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn visualize_operations(&self, path: impl AsRef<Path>) -> Result<()> {
        render(&self.operations_dot(), path.as_ref())
    }

    /// Draw the task graph `compute` runs (after fusion: one node per task, like dask's
    /// `visualize()`) to `path`: `.svg`, `.png` or `.pdf` through Graphviz, up to
    /// [`MAX_DRAWN_TASKS`] tasks; `.dot` for the text, at any size. For big arrays draw the
    /// graph of operations instead ([`visualize_operations`](Self::visualize_operations)).
    ///
    /// ```
    /// let x = blockarray::BlockArray::<f64>::ones(&[100, 100], [50, 50])?;
    /// let dir = std::env::temp_dir();
    /// let path = dir.join(format!("tasks-doc-{}.dot", std::process::id()));
    /// x.sum(None, false)?.visualize(&path)?; // 4 fused tasks, a combine, the result
    /// assert!(std::fs::read_to_string(&path)?.starts_with("digraph"));
    /// // Too many tasks to draw: write .dot, or draw the operations instead.
    /// let big = blockarray::BlockArray::<f64>::ones(&[10_000, 10_000], [100, 100])?;
    /// assert!(big.sum(None, false)?.visualize(dir.join("big.svg")).is_err());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn visualize(&self, path: impl AsRef<Path>) -> Result<()> {
        let (graph, _) = self.lowered(None)?;
        render_tasks(&graph, path.as_ref())
    }
}

impl Computation {
    /// The graph of operations of everything this computation computes and stores, in DOT
    /// (see [`BlockArray::operations_dot`]); stores appear as `store` nodes.
    ///
    /// ```
    /// use blockarray::{BlockArray, Computation};
    /// let x = BlockArray::<f64>::ones(&[1000, 1000], [100, 100])?;
    /// let mut c = Computation::new();
    /// c.add(&x.sum(None, false)?);
    /// c.add(&x.mean(Some(&[0]), false)?);
    /// let dot = c.operations_dot();
    /// // x once, read by both reductions; each result kept: the mean's 10 blocks stored into
    /// // one array, the sum's one block collected as it is.
    /// assert_eq!(dot.matches(r#"label="ones"#).count(), 1);
    /// assert_eq!(dot.matches(r#"label="store"#).count(), 1);
    /// assert_eq!(dot.matches(r#"label="collect"#).count(), 1);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn operations_dot(&self) -> String {
        operations_dot(self.roots())
    }

    /// Draw the graph of operations to `path` (see [`BlockArray::visualize_operations`]).
    pub fn visualize_operations(&self, path: impl AsRef<Path>) -> Result<()> {
        render(&self.operations_dot(), path.as_ref())
    }

    /// Draw the task graph this computation runs to `path` (see [`BlockArray::visualize`]).
    pub fn visualize(&self, path: impl AsRef<Path>) -> Result<()> {
        let (graph, _) = self.graph()?;
        render_tasks(&graph, path.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_quoted_for_dot() {
        assert_eq!(quote("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
    }
}
