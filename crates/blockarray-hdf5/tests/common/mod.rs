//! Helpers shared by the integration tests: unique temporary files that clean up after
//! themselves.

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
            "blockarray-hdf5-test-{}-{n}-{name}",
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

/// The names of every link in the file, recursively (groups as `name/`), to check that no
/// temporary dataset was left behind.
pub fn all_links(path: &Path) -> Vec<String> {
    blockarray_hdf5::with_hdf5_lock(|| {
        let f = hdf5::File::open(path).expect("test file opens");
        let mut out = Vec::new();
        walk(&f, "", &mut out);
        out.sort();
        out
    })
}

fn walk(g: &hdf5::Group, prefix: &str, out: &mut Vec<String>) {
    for name in g.member_names().expect("members") {
        let full = format!("{prefix}/{name}");
        match g.group(&name) {
            Ok(sub) => {
                out.push(format!("{full}/"));
                walk(&sub, &full, out);
            }
            Err(_) => out.push(full),
        }
    }
}
