//! Rendering DOT text with Graphviz.

use std::io::{self, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// The formats [`render_dot`] writes, by file extension.
pub const DOT_FORMATS: &[&str] = &["dot", "gv", "svg", "png", "pdf"];

/// Write the graph `dot` (Graphviz DOT text) to `path`, in the format its extension names:
/// `.dot` or `.gv` write the text itself (no Graphviz needed); `.svg`, `.png` and `.pdf` are
/// drawn by Graphviz's `dot` program (Debian: `apt-get install graphviz`; `cargo xtask deps`
/// installs it).
///
/// Errors name the file: an extension not in [`DOT_FORMATS`], a missing `dot` program (the
/// message says how to install it, or to write `.dot` instead), `dot` failing (its own
/// message), or the file not being writable.
///
/// ```
/// let dot = "digraph { a -> b }";
/// let dir = std::env::temp_dir();
/// let path = dir.join(format!("render-doc-{}.dot", std::process::id()));
/// dag_core::diagnostics::render_dot(dot, &path)?;
/// assert_eq!(std::fs::read_to_string(&path)?, dot);
/// let bad = dag_core::diagnostics::render_dot(dot, dir.join("graph.jpeg")).unwrap_err();
/// assert!(bad.to_string().contains("graph.jpeg"));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn render_dot(dot: &str, path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    match ext.as_str() {
        "dot" | "gv" => std::fs::write(path, dot).map_err(named),
        "svg" | "png" | "pdf" => {
            let mut child = Command::new("dot")
                .arg(format!("-T{ext}"))
                .arg("-o")
                .arg(path)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| {
                    if e.kind() == io::ErrorKind::NotFound {
                        io::Error::new(
                            e.kind(),
                            format!(
                                "cannot draw {}: Graphviz's `dot` program is not installed \
                                 (Debian: apt-get install graphviz, or `cargo xtask deps`); \
                                 write a .dot file to get the DOT text instead",
                                path.display()
                            ),
                        )
                    } else {
                        named(e)
                    }
                })?;
            // `dot` reads all its input before writing; a write error shows in its status.
            let written = child
                .stdin
                .take()
                .expect("stdin is piped")
                .write_all(dot.as_bytes());
            let out = child.wait_with_output().map_err(named)?;
            if !out.status.success() {
                return Err(io::Error::other(format!(
                    "Graphviz's dot could not draw {}: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            written.map_err(named)
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cannot write a graph to {}: the extension must be one of {}",
                path.display(),
                DOT_FORMATS.join(", ")
            ),
        )),
    }
}

/// Whether Graphviz's `dot` program can be run (to choose between drawing a graph and
/// writing its DOT text).
///
/// ```
/// let ext = if dag_core::diagnostics::graphviz_available() { "svg" } else { "dot" };
/// assert!(dag_core::diagnostics::DOT_FORMATS.contains(&ext));
/// ```
pub fn graphviz_available() -> bool {
    Command::new("dot")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
