//! Helpers shared by the integration tests: unique temporary stores that clean up after
//! themselves, and a listing of everything in a store.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique path under the temporary directory, removed (with anything at it) on drop.
pub struct TempPath(PathBuf);

impl TempPath {
    /// A fresh path ending in `name`.
    pub fn new(name: &str) -> TempPath {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        TempPath(std::env::temp_dir().join(format!(
            "blockarray-zarr-test-{}-{n}-{name}",
            std::process::id()
        )))
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Every file and directory under `dir` (relative, sorted; directories end in `/`), with each
/// file's contents, to check that a failure changed nothing and left nothing behind.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.map(|e| e.expect("entry")) {
            let name = format!("{rel}{}", e.file_name().to_string_lossy());
            if e.file_type().expect("type").is_dir() {
                out.push((format!("{name}/"), Vec::new()));
                walk(&e.path(), &format!("{name}/"), out);
            } else {
                out.push((name, std::fs::read(e.path()).expect("read")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

/// The names in `snapshot(dir)`.
pub fn names(dir: &Path) -> Vec<String> {
    snapshot(dir).into_iter().map(|(n, _)| n).collect()
}
