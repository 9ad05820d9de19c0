//! Stores on disk: array paths, what a directory holds, opening arrays, error messages, and
//! the content tokens that key tasks reading an array.

use blockarray::{Error, ErrorKind, Result};
use dag_core::Tokenizer;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;
use zarrs::array::{Array, ArrayCreateError, ArrayMetadata};
use zarrs::filesystem::FilesystemStore;

/// The zarrs array type this crate works with: a directory store on the local file system.
pub(crate) type FsArray = Array<FilesystemStore>;

/// An error of `kind` naming the store and the array.
pub(crate) fn err(
    kind: ErrorKind,
    store: &Path,
    array: &str,
    msg: impl std::fmt::Display,
) -> Error {
    Error::new(
        kind,
        format!("Zarr store {}, array \"{array}\": {msg}", store.display()),
    )
}

/// An I/O error naming the store and the array.
pub(crate) fn io_err(store: &Path, array: &str, msg: impl std::fmt::Display) -> Error {
    err(ErrorKind::Io, store, array, msg)
}

/// `array` as a normalised node path: `/` for the store's root, else `/a/b` (no empty, `.`,
/// `..` or `__`-prefixed parts, which Zarr reserves).
pub(crate) fn normalize_array_path(store: &Path, array: &str) -> Result<String> {
    let mut out = String::new();
    for part in array.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." || part.starts_with("__") {
            return Err(err(
                ErrorKind::Index,
                store,
                array,
                format!("\"{part}\" is not a valid node name in an array path"),
            ));
        }
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// The directory of node `path` (normalised) in the store at `store`.
pub(crate) fn node_dir(store: &Path, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        store.to_path_buf()
    } else {
        store.join(rel)
    }
}

/// The storage an array's directory is, as [`ChunkSource::resource`] and
/// [`ChunkSink::writes_in_place`] name it (so that a computation never writes in place into
/// an array it reads): `zarr:` and the directory's canonical path.
///
/// [`ChunkSource::resource`]: blockarray::ChunkSource::resource
/// [`ChunkSink::writes_in_place`]: blockarray::ChunkSink::writes_in_place
pub(crate) fn resource(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("zarr:{}", dir.display())
}

/// What a directory of a store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// Nothing there.
    Missing,
    /// A plain file.
    File,
    /// A directory without Zarr metadata (an implicit group, or not Zarr at all).
    Directory,
    /// A Zarr v3 or v2 array.
    Array,
    /// A Zarr v3 or v2 group.
    Group,
}

/// What `dir` holds.
pub(crate) fn node_kind(dir: &Path) -> NodeKind {
    let Ok(meta) = std::fs::metadata(dir) else {
        return NodeKind::Missing;
    };
    if !meta.is_dir() {
        return NodeKind::File;
    }
    if let Ok(bytes) = std::fs::read(dir.join("zarr.json")) {
        let node_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("node_type")
                    .and_then(|t| t.as_str().map(str::to_owned))
            });
        return match node_type.as_deref() {
            Some("group") => NodeKind::Group,
            _ => NodeKind::Array,
        };
    }
    if dir.join(".zarray").is_file() {
        NodeKind::Array
    } else if dir.join(".zgroup").is_file() {
        NodeKind::Group
    } else {
        NodeKind::Directory
    }
}

/// The arrays in a store (node paths), found by walking at most a few levels and at most
/// `limit` of them, for messages about a missing array.
pub(crate) fn list_arrays(store: &Path, limit: usize) -> Vec<String> {
    fn walk(dir: &Path, path: &str, depth: usize, limit: usize, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            if out.len() >= limit {
                return;
            }
            let child = format!("{}/{name}", path.trim_end_matches('/'));
            let d = dir.join(&name);
            match node_kind(&d) {
                NodeKind::Array => out.push(child),
                NodeKind::Group | NodeKind::Directory if depth > 0 => {
                    walk(&d, &child, depth - 1, limit, out)
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    if node_kind(store) == NodeKind::Array {
        out.push("/".to_owned());
    } else {
        walk(store, "/", 3, limit, &mut out);
    }
    out
}

/// The store directory as an absolute path, checking that it exists and is a directory.
pub(crate) fn existing_store(store: &Path, array: &str) -> Result<PathBuf> {
    match std::fs::metadata(store) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(io_err(
            store,
            array,
            "the store does not exist (a Zarr store on disk is a directory)",
        )),
        Err(e) => Err(io_err(store, array, format!("cannot open the store: {e}"))),
        Ok(m) if !m.is_dir() => Err(io_err(
            store,
            array,
            "the store is not a directory (only directory stores are supported, not zip files)",
        )),
        Ok(_) => std::fs::canonicalize(store).map_err(|e| {
            io_err(
                store,
                array,
                format!("cannot resolve the store's path: {e}"),
            )
        }),
    }
}

/// A zarrs directory store rooted at `dir`.
pub(crate) fn fs_store(dir: &Path, array: &str) -> Result<Arc<FilesystemStore>> {
    FilesystemStore::new(dir)
        .map(Arc::new)
        .map_err(|e| io_err(dir, array, format!("cannot open the store: {e}")))
}

/// The metadata documents of the array in `dir`: `zarr.json`, or `.zarray` and `.zattrs`.
pub(crate) fn metadata_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for name in ["zarr.json", ".zarray", ".zattrs"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(&b);
        }
    }
    out
}

/// Open the existing array `array` (normalised) of the store at `store` (absolute), with
/// errors naming both: a missing array lists the arrays the store holds; a group says so;
/// an unsupported codec, data type or chunk grid is [`ErrorKind::Unsupported`].
pub(crate) fn open_array(store: &Path, array: &str) -> Result<FsArray> {
    let dir = node_dir(store, array);
    match node_kind(&dir) {
        NodeKind::Array => {}
        NodeKind::Group => {
            return Err(io_err(store, array, "is a group, not an array"));
        }
        NodeKind::File => {
            return Err(io_err(store, array, "is a file, not a Zarr array"));
        }
        NodeKind::Missing | NodeKind::Directory => {
            let arrays = list_arrays(store, 20);
            let held = if arrays.is_empty() {
                "the store holds no arrays".to_owned()
            } else {
                format!("the store holds {}", arrays.join(", "))
            };
            return Err(io_err(store, array, format!("no such array ({held})")));
        }
    }
    let fs = fs_store(store, array)?;
    Array::open(fs, array).map_err(|e| create_error(store, array, e))
}

/// A zarrs error from opening or creating an array, as ours.
pub(crate) fn create_error(store: &Path, array: &str, e: ArrayCreateError) -> Error {
    let kind = match &e {
        ArrayCreateError::CodecsCreateError(_)
        | ArrayCreateError::DataTypeCreateError(_)
        | ArrayCreateError::ChunkGridCreateError(_)
        | ArrayCreateError::ChunkKeyEncodingCreateError(_)
        | ArrayCreateError::StorageTransformersCreateError(_)
        | ArrayCreateError::UnsupportedZarrV2Array(_) => ErrorKind::Unsupported,
        _ => ErrorKind::Io,
    };
    let what = match kind {
        ErrorKind::Unsupported => "cannot be read: unsupported metadata",
        _ => "cannot be opened",
    };
    err(kind, store, array, format!("{what}: {e}"))
}

/// Whether the array's metadata is Zarr v2.
pub(crate) fn is_v2(array: &FsArray) -> bool {
    matches!(array.metadata(), ArrayMetadata::V2(_))
}

/// Feed what identifies an array's contents to `t`: its metadata documents, and the relative
/// path, length and modification time of every file under its directory (chunks, shards), in
/// sorted order. Rewriting any chunk, or the metadata, changes the token; the cost is one
/// `stat` per stored chunk, once, when the array is opened.
pub(crate) fn content_token(dir: &Path, t: &mut Tokenizer) {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, u64, u64)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                walk(&e.path(), &child, out);
            } else {
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as u64);
                out.push((child, m.len(), mtime));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, "", &mut files);
    files.sort();
    t.write_bytes(&metadata_bytes(dir));
    t.write_usize(files.len());
    for (name, len, mtime) in &files {
        t.write_str(name).write_u64(*len).write_u64(*mtime);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_paths_are_normalised() {
        let s = Path::new("s.zarr");
        assert_eq!(normalize_array_path(s, "x").unwrap(), "/x");
        assert_eq!(normalize_array_path(s, "/g//x/").unwrap(), "/g/x");
        assert_eq!(normalize_array_path(s, "").unwrap(), "/");
        assert_eq!(normalize_array_path(s, "/").unwrap(), "/");
        let e = normalize_array_path(s, "/g/../x").unwrap_err();
        assert!(e.to_string().contains("\"..\""), "{e}");
        assert!(normalize_array_path(s, "__x").is_err());
        assert_eq!(node_dir(s, "/"), Path::new("s.zarr"));
        assert_eq!(node_dir(s, "/g/x"), Path::new("s.zarr/g/x"));
    }
}
