//! Open files, the process-wide HDF5 lock, dataset paths and error messages.
//!
//! Every HDF5 call this crate makes runs inside [`with_hdf5_lock`]. Files are opened once per
//! process and shared ([`OpenFile`]): an array read from a file and a store into the same file
//! use one HDF5 file handle, which is upgraded from read-only to read/write when a store needs
//! it (possible because datasets are only opened for the duration of one locked call).
//!
//! The handle also keeps what a failed store needs to leave the file as it found it: the
//! groups sinks created (removed again once empty, whichever sink empties them), and whether
//! this handle created the file, so that a failed store into a file that did not exist
//! removes it instead of leaving an empty file behind (see [`OpenFile::sink_ended`]).

use blockarray::{Error, ErrorKind, Result};
use hdf5::{File, Group, LocationType, OpenMode};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Run `f` holding the process-wide HDF5 lock (a reentrant mutex, the one `hdf5-metno` takes
/// around each of its own calls).
///
/// The HDF5 C library is not thread-safe; this crate calls it only inside this lock and holds
/// the lock only for the calls themselves, so decompression and computation stay parallel. Use
/// it around your own `hdf5` calls if they must not interleave with a running computation's
/// (a sequence of several calls that must see a consistent file).
///
/// ```
/// let v = blockarray_hdf5::with_hdf5_lock(|| 6 * 7);
/// assert_eq!(v, 42);
/// ```
pub fn with_hdf5_lock<R>(f: impl FnOnce() -> R) -> R {
    hdf5::sync::sync(f)
}

/// An error of `kind` naming the file and the dataset.
pub(crate) fn err(
    kind: ErrorKind,
    file: &Path,
    dataset: &str,
    msg: impl std::fmt::Display,
) -> Error {
    Error::new(
        kind,
        format!("HDF5 file {}, dataset \"{dataset}\": {msg}", file.display()),
    )
}

/// An I/O error naming the file and the dataset.
pub(crate) fn io_err(file: &Path, dataset: &str, msg: impl std::fmt::Display) -> Error {
    err(ErrorKind::Io, file, dataset, msg)
}

/// How a file is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    Write,
    /// Read and write; created when missing. For a sink writing a new dataset: the handle
    /// counts it as pending until it calls [`OpenFile::sink_ended`].
    Create,
}

struct FileState {
    file: Option<File>,
    writable: bool,
    /// This handle created the file (it did not exist when opened).
    created: bool,
    /// Sinks writing new datasets into the file that have neither discarded their data nor
    /// committed it for good.
    pending: usize,
    /// A sink committed a dataset into the file for good.
    kept: bool,
    /// The file was removed: a failed store had created it and left nothing in it.
    removed: bool,
}

/// A file open in this process, shared by every source and sink that uses it.
pub(crate) struct OpenFile {
    path: PathBuf,
    /// The file this handle has open (device and inode): a path replaced or deleted since
    /// names another file, which a new open must not be given this handle for.
    identity: Option<(u64, u64)>,
    state: Mutex<FileState>,
    /// Groups that sinks created for datasets not committed for good yet: a discarded sink
    /// removes those of its ancestors that are then empty, even when another sink created
    /// them. (Locked after `state`, inside [`OpenFile::with`].)
    groups: Mutex<HashSet<String>>,
}

impl OpenFile {
    /// The path (absolute).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file's device and inode when it was opened (Unix), which the path may no longer
    /// name.
    pub(crate) fn identity(&self) -> Option<(u64, u64)> {
        self.identity
    }

    /// Run `f` on the file under the HDF5 lock.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&File) -> Result<R>) -> Result<R> {
        with_hdf5_lock(|| {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match &state.file {
                Some(file) => f(file),
                None if state.removed => Err(Error::io(format!(
                    "HDF5 file {} was removed: a failed store had created it and left nothing in it",
                    self.path.display()
                ))),
                None => Err(Error::io(format!(
                    "HDF5 file {} is closed (reopening it for writing failed)",
                    self.path.display()
                ))),
            }
        })
    }

    /// Record that a sink created `group` (call inside [`with`](Self::with)).
    pub(crate) fn group_created(&self, group: &str) {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group.to_owned());
    }

    /// Remove the ancestor groups of `dataset` (deepest first) that sinks created and that are
    /// now empty (call inside [`with`](Self::with), on the file it was given).
    pub(crate) fn remove_empty_groups(&self, h: &File, dataset: &str) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for g in ancestors(dataset) {
            if !groups.contains(&g) || !h.group(&g).is_ok_and(|g| g.is_empty()) {
                break;
            }
            let _ = h.unlink(&g);
            groups.remove(&g);
        }
    }

    /// The ancestor groups of `dataset` hold a committed dataset now: never remove them.
    pub(crate) fn groups_kept(&self, dataset: &str) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for g in ancestors(dataset) {
            groups.remove(&g);
        }
    }

    /// A sink that opened the file with [`Access::Create`] ended: it committed its dataset for
    /// good (`kept`), or discarded it. ([`open_file`] counts it as pending in the same locked
    /// call that hands out the handle, so no removal can come in between.) When this handle
    /// created the file, no other sink is pending, nothing was ever kept in it and its root
    /// group is empty, the file is closed and removed: a failed store into a file that did not
    /// exist leaves no file. (Sinks on one file share this handle, so a store still pending
    /// keeps the file.) Call outside [`with`](Self::with).
    pub(crate) fn sink_ended(&self, kept: bool) {
        with_hdf5_lock(|| {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.pending = state.pending.saturating_sub(1);
            state.kept |= kept;
            if !state.created || state.kept || state.pending > 0 {
                return;
            }
            let empty = state
                .file
                .as_ref()
                .is_some_and(|f| f.member_names().is_ok_and(|m| m.is_empty()));
            if !empty {
                return;
            }
            // Close first (no dataset of it is open outside a locked call), then forget it,
            // so that a later open of this path creates a fresh file.
            drop(state.file.take());
            state.removed = true;
            let _ = std::fs::remove_file(&self.path);
            drop(state);
            let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
            if reg
                .get(&self.path)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
            {
                reg.remove(&self.path);
            }
        });
    }
}

/// The groups above `dataset` (a normalised path), deepest first: `/a/b/c` gives `/a/b`, `/a`.
fn ancestors(dataset: &str) -> impl Iterator<Item = String> + '_ {
    let mut end = dataset.len();
    std::iter::from_fn(move || {
        let cut = dataset[..end].rfind('/')?;
        end = cut;
        (cut > 0).then(|| dataset[..cut].to_owned())
    })
}

/// What identifies `dataset` of `file` as storage, for
/// [`ChunkSource::resource`](blockarray::ChunkSource::resource) and
/// [`ChunkSink::writes_in_place`](blockarray::ChunkSink::writes_in_place): the object HDF5
/// stores it as (its file number, shared by every handle on one file however its path is
/// spelled, and its address in the file), so that a soft or hard link to a dataset, or the
/// file under another path, is the same resource. When the object cannot be looked up, the
/// canonical file path and the dataset path.
pub(crate) fn resource(file: &OpenFile, dataset: &str) -> String {
    let object = file.with(|h| {
        h.loc_info_by_name(dataset)
            .map_err(|e| Error::io(e.to_string()))
    });
    match object {
        Ok(info) => format!("hdf5:file {}:object {:?}", info.fileno, info.token),
        Err(_) => format!("hdf5:{}:{dataset}", file.path().display()),
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        // Close under the lock, and forget the registry entry, so that a later open starts
        // afresh.
        with_hdf5_lock(|| {
            let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
            if let Some(file) = state.file.take() {
                if state.writable {
                    let _ = file.flush();
                }
                drop(file);
            }
            let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
            if reg.get(&self.path).is_some_and(|w| w.strong_count() == 0) {
                reg.remove(&self.path);
            }
        });
    }
}

/// The device and inode of the file at `path` (`None` if there is none, or off Unix).
fn identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<OpenFile>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Weak<OpenFile>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The absolute, symlink-free path of `path` (of its directory, when the file does not exist
/// yet), so that two spellings of one file share one handle.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |d| d.join(path))
    };
    match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map_or_else(|_| absolute.clone(), |d| d.join(name)),
        _ => absolute,
    }
}

fn open_raw(path: &Path, access: Access, dataset: &str) -> Result<File> {
    let exists = path.exists();
    if !exists && access != Access::Create {
        return Err(io_err(path, dataset, "no such file"));
    }
    if path.is_dir() {
        return Err(io_err(path, dataset, "is a directory, not an HDF5 file"));
    }
    if exists {
        // HDF5's own message for a non-HDF5 file is a deep error stack; say it plainly.
        let is_hdf5 = with_hdf5_lock(|| {
            let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
            // SAFETY: a valid NUL-terminated path; H5Fis_hdf5 only reads the file.
            Some(unsafe { hdf5_sys::h5f::H5Fis_hdf5(c.as_ptr()) })
        });
        match is_hdf5 {
            Some(r) if r > 0 => {}
            Some(0) => {
                return Err(io_err(
                    path,
                    dataset,
                    "not an HDF5 file (no HDF5 signature found: corrupt, truncated or another format)",
                ));
            }
            _ => return Err(io_err(path, dataset, "cannot be read as an HDF5 file")),
        }
    }
    let mode = match access {
        Access::Read => OpenMode::Read,
        Access::Write => OpenMode::ReadWrite,
        Access::Create if exists => OpenMode::ReadWrite,
        Access::Create => OpenMode::CreateExcl,
    };
    with_hdf5_lock(|| File::open_as(path, mode)).map_err(|e| {
        io_err(
            path,
            dataset,
            format!(
                "cannot open ({}): {e}",
                if access == Access::Read {
                    "read"
                } else {
                    "read/write"
                }
            ),
        )
    })
}

/// The shared handle of `path`, opened (or upgraded to read/write) as `access` needs.
/// `dataset` only names what the caller wanted, for error messages.
pub(crate) fn open_file(path: &Path, access: Access, dataset: &str) -> Result<Arc<OpenFile>> {
    let key = canonical(path);
    with_hdf5_lock(|| {
        // A handle on the file the path names now: one on a file since replaced (an atomic
        // rename over it) or deleted would read the old data, or write into a file no path
        // names.
        let existing = {
            let reg = registry().lock().unwrap_or_else(|e| e.into_inner());
            reg.get(&key).and_then(Weak::upgrade)
        }
        .filter(|open| open.identity.is_none() || open.identity == identity(&key));
        if let Some(open) = existing {
            let mut state = open.state.lock().unwrap_or_else(|e| e.into_inner());
            if access != Access::Read && !state.writable {
                // Upgrade: nothing else holds an HDF5 id of this file outside the lock, so the
                // read-only handle can be closed and the file reopened read/write.
                drop(state.file.take());
                match open_raw(&key, Access::Write, dataset) {
                    Ok(f) => {
                        state.file = Some(f);
                        state.writable = true;
                    }
                    Err(e) => {
                        state.file = open_raw(&key, Access::Read, dataset).ok();
                        return Err(e);
                    }
                }
            }
            if access == Access::Create {
                state.pending += 1;
            }
            drop(state);
            return Ok(open);
        }
        let created = access == Access::Create && !key.exists();
        let file = open_raw(&key, access, dataset)?;
        let open = Arc::new(OpenFile {
            path: key.clone(),
            identity: identity(&key),
            state: Mutex::new(FileState {
                file: Some(file),
                writable: access != Access::Read,
                created,
                pending: usize::from(access == Access::Create),
                kept: false,
                removed: false,
            }),
            groups: Mutex::new(HashSet::new()),
        });
        let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        reg.retain(|_, w| w.strong_count() > 0);
        reg.insert(key, Arc::downgrade(&open));
        Ok(open)
    })
}

/// `dataset` as an absolute HDF5 path without trailing or doubled slashes, or an error.
pub(crate) fn normalize_dataset_path(file: &Path, dataset: &str) -> Result<String> {
    let parts: Vec<&str> = dataset.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(err(
            ErrorKind::Index,
            file,
            dataset,
            "a dataset path needs a name (\"/x\", \"group/x\"), not the root group",
        ));
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(err(
            ErrorKind::Index,
            file,
            dataset,
            "\".\" and \"..\" are not allowed in a dataset path",
        ));
    }
    Ok(format!("/{}", parts.join("/")))
}

/// What a path names in a file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Missing,
    Dataset,
    Group,
    Other,
}

/// What `path` (normalised) names in `file`; a component that is not a group makes it
/// `Missing` below it (reported by the caller). Call under the lock.
pub(crate) fn target(file: &Group, path: &str) -> Result<(Target, Option<String>)> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut prefix = String::new();
    for (i, part) in parts.iter().enumerate() {
        prefix.push('/');
        prefix.push_str(part);
        if !file.link_exists(&prefix) {
            return Ok((Target::Missing, None));
        }
        let kind = file
            .loc_type_by_name(&prefix)
            .map_err(|e| Error::io(format!("cannot inspect \"{prefix}\": {e}")))?;
        let last = i + 1 == parts.len();
        match (kind, last) {
            (LocationType::Group, false) => {}
            (LocationType::Group, true) => return Ok((Target::Group, None)),
            (LocationType::Dataset, true) => return Ok((Target::Dataset, None)),
            (LocationType::Dataset, false) => {
                return Ok((Target::Missing, Some(prefix)));
            }
            (_, true) => return Ok((Target::Other, None)),
            (_, false) => return Ok((Target::Missing, Some(prefix))),
        }
    }
    Ok((Target::Group, None))
}

/// Open `path` (normalised) as a dataset of `file`, or an error naming what is there instead.
/// Call under the lock.
pub(crate) fn open_dataset(file: &File, file_path: &Path, path: &str) -> Result<hdf5::Dataset> {
    match target(file, path)? {
        (Target::Dataset, _) => file
            .dataset(path)
            .map_err(|e| io_err(file_path, path, format!("cannot open the dataset: {e}"))),
        (Target::Group, _) => {
            let members = file
                .group(path)
                .and_then(|g| g.member_names())
                .unwrap_or_default();
            let shown: Vec<&str> = members.iter().take(8).map(String::as_str).collect();
            Err(io_err(
                file_path,
                path,
                format!(
                    "is a group, not a dataset (members: {}{})",
                    if shown.is_empty() {
                        "none".to_owned()
                    } else {
                        shown.join(", ")
                    },
                    if members.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    }
                ),
            ))
        }
        (Target::Missing, Some(blocker)) => Err(io_err(
            file_path,
            path,
            format!("no such dataset (\"{blocker}\" is not a group)"),
        )),
        (Target::Missing, None) => {
            let names = file.member_names().unwrap_or_default();
            let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
            Err(io_err(
                file_path,
                path,
                format!(
                    "no such dataset (the root group holds: {}{})",
                    if shown.is_empty() {
                        "nothing".to_owned()
                    } else {
                        shown.join(", ")
                    },
                    if names.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    }
                ),
            ))
        }
        (Target::Other, _) => Err(io_err(
            file_path,
            path,
            "is neither a dataset nor a group (a named datatype?)",
        )),
    }
}

/// NumPy's name for an HDF5 type (`"float64"`, `"int32"`, `"bool"`, `"complex128"`, or
/// HDF5's description for other types).
pub(crate) fn type_name(dtype: &hdf5::Datatype) -> String {
    use hdf5::types::TypeDescriptor as TD;
    match dtype.to_descriptor() {
        Ok(TD::Compound(c))
            if c.fields.len() == 2
                && c.fields[0].name == "r"
                && c.fields[1].name == "i"
                && matches!(c.fields[0].ty, TD::Float(_))
                && c.fields[0].ty == c.fields[1].ty =>
        {
            format!("complex{}", c.size * 8)
        }
        Ok(d) => d.to_string(),
        Err(_) => format!("an unsupported HDF5 type ({} bytes)", dtype.size()),
    }
}

/// The modification time (ns since the epoch) and length of a file, for tokens.
pub(crate) fn stamp(path: &Path) -> (u64, u64) {
    std::fs::metadata(path).map_or((0, 0), |m| {
        let t = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        (t, m.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_run_deepest_first_and_stop_below_the_root() {
        let all: Vec<String> = ancestors("/a/bc/d").collect();
        assert_eq!(all, ["/a/bc", "/a"]);
        assert_eq!(ancestors("/x").count(), 0);
    }
}
