//! Direct chunk I/O: raw (compressed) chunks move between the file and memory under the HDF5
//! lock; shuffling and deflating happen outside it, in parallel.
//!
//! HDF5 runs a dataset's filters inside the library, so with one lock around the library
//! (h5py, and so dask) every decompression is serialised. `H5Dread_chunk` returns a chunk's
//! stored bytes untouched, and `H5Dwrite_chunk` stores bytes that are already filtered: with
//! them the lock covers only the copy between the file and memory, and the CPU-heavy work
//! (zlib, shuffle) runs on every core. Only pipelines made of the filters this module
//! implements (shuffle, deflate) take this path, and only when the file's element type is the
//! native in-memory type; everything else goes through `H5Dread`/`H5Dwrite`.

use crate::element::Hdf5Element;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use hdf5::filters::Filter;
use hdf5_sys::h5::{HADDR_UNDEF, haddr_t, hsize_t};
use hdf5_sys::h5p::H5P_DEFAULT;

/// One filter of a pipeline this module can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// HDF5's byte shuffle with this element size.
    Shuffle(usize),
    /// zlib (HDF5's "deflate") at this level.
    Deflate(u32),
}

/// The stages of `filters` (in pipeline order) if every one is supported and there is at
/// least one, else `None`.
pub(crate) fn pipeline(filters: &[Filter], itemsize: usize) -> Option<Vec<Stage>> {
    if filters.is_empty() {
        return None;
    }
    filters
        .iter()
        .map(|f| match f {
            Filter::Shuffle => Some(Stage::Shuffle(itemsize)),
            Filter::Deflate(level) => Some(Stage::Deflate(u32::from(*level).min(9))),
            _ => None,
        })
        .collect()
}

/// Undo HDF5's shuffle: byte `j` of element `i` was stored at `j * n + i`.
pub(crate) fn unshuffle(data: &[u8], size: usize) -> Vec<u8> {
    let n = data.len() / size.max(1);
    if size <= 1 || n <= 1 {
        return data.to_vec();
    }
    let mut out = vec![0u8; data.len()];
    match size {
        2 => unshuffle_n::<2>(data, n, &mut out),
        4 => unshuffle_n::<4>(data, n, &mut out),
        8 => unshuffle_n::<8>(data, n, &mut out),
        16 => unshuffle_n::<16>(data, n, &mut out),
        _ => {
            for j in 0..size {
                let plane = &data[j * n..(j + 1) * n];
                for (i, &b) in plane.iter().enumerate() {
                    out[i * size + j] = b;
                }
            }
        }
    }
    // Bytes past the last whole element are stored as they are.
    out[n * size..].copy_from_slice(&data[n * size..]);
    out
}

/// [`unshuffle`] for a fixed element size: reads `S` planes in step, writes in order.
fn unshuffle_n<const S: usize>(data: &[u8], n: usize, out: &mut [u8]) {
    let planes: [&[u8]; S] = std::array::from_fn(|j| &data[j * n..(j + 1) * n]);
    for (i, element) in out[..n * S].chunks_exact_mut(S).enumerate() {
        for (j, b) in element.iter_mut().enumerate() {
            *b = planes[j][i];
        }
    }
}

/// HDF5's shuffle.
pub(crate) fn shuffle(data: &[u8], size: usize) -> Vec<u8> {
    let n = data.len() / size.max(1);
    if size <= 1 || n <= 1 {
        return data.to_vec();
    }
    let mut out = vec![0u8; data.len()];
    for j in 0..size {
        let plane = &mut out[j * n..(j + 1) * n];
        for (i, b) in plane.iter_mut().enumerate() {
            *b = data[i * size + j];
        }
    }
    out[n * size..].copy_from_slice(&data[n * size..]);
    out
}

/// Inflate a zlib stream; `hint` is the expected output size. Output beyond twice the hint
/// (plus slack) means a corrupt stream, not a reason to exhaust memory.
pub(crate) fn inflate(data: &[u8], hint: usize) -> Result<Vec<u8>, String> {
    let limit = hint.saturating_mul(2).saturating_add(1 << 16);
    let mut d = Decompress::new(true);
    let mut out = Vec::with_capacity(hint.max(64));
    loop {
        if out.len() > limit {
            return Err(format!(
                "corrupt deflate stream: inflates past {limit} bytes (expected {hint})"
            ));
        }
        let before_in = d.total_in();
        let before_out = d.total_out();
        let status = d
            .decompress_vec(
                &data[d.total_in() as usize..],
                &mut out,
                FlushDecompress::None,
            )
            .map_err(|e| format!("corrupt deflate stream: {e}"))?;
        match status {
            Status::StreamEnd => return Ok(out),
            _ if out.len() == out.capacity() => out.reserve(out.capacity().max(64)),
            _ if d.total_in() == before_in && d.total_out() == before_out => {
                return Err("truncated deflate stream".to_owned());
            }
            _ => {}
        }
    }
}

/// Deflate into a zlib stream at `level`.
pub(crate) fn deflate(data: &[u8], level: u32) -> Vec<u8> {
    let mut c = Compress::new(Compression::new(level), true);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    loop {
        let status = c
            .compress_vec(
                &data[c.total_in() as usize..],
                &mut out,
                FlushCompress::Finish,
            )
            .expect("compressing into a growable buffer cannot fail");
        if status == Status::StreamEnd {
            return out;
        }
        out.reserve(out.capacity().max(64));
    }
}

/// Undo the stages not masked out by `mask` (bit `i` set: stage `i` was skipped), last first.
pub(crate) fn decode_stages(
    raw: Vec<u8>,
    stages: &[Stage],
    mask: u32,
    nbytes: usize,
) -> Result<Vec<u8>, String> {
    let mut data = raw;
    for (i, stage) in stages.iter().enumerate().rev() {
        if i < 32 && mask & (1 << i) != 0 {
            continue;
        }
        data = match *stage {
            Stage::Deflate(_) => inflate(&data, nbytes)?,
            Stage::Shuffle(size) => unshuffle(&data, size),
        };
    }
    if data.len() != nbytes {
        return Err(format!(
            "chunk decodes to {} bytes, expected {nbytes}",
            data.len()
        ));
    }
    Ok(data)
}

/// Run every stage, first to last.
pub(crate) fn encode_stages(bytes: Vec<u8>, stages: &[Stage]) -> Vec<u8> {
    let mut data = bytes;
    for stage in stages {
        data = match *stage {
            Stage::Deflate(level) => deflate(&data, level),
            Stage::Shuffle(size) => shuffle(&data, size),
        };
    }
    data
}

/// Decode a chunk's raw bytes into its values.
pub(crate) fn decode_chunk<T: Hdf5Element>(
    raw: Vec<u8>,
    stages: &[Stage],
    mask: u32,
    elems: usize,
) -> Result<Vec<T>, String> {
    let bytes = decode_stages(raw, stages, mask, elems * T::itemsize())?;
    let mut out = Vec::with_capacity(elems);
    T::decode(&bytes, &mut out);
    Ok(out)
}

/// The filter pipeline every chunk of `ds` went through, when chunks may be read and written
/// directly by it: `None` for a dataset that is not chunked, whose partial edge chunks are
/// stored unfiltered (`H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS`: their filter mask says 0 all
/// the same), or whose pipeline hdf5-metno could not parse whole (it lists none then, such as
/// for a scale-offset filter with a factor above 255, which would make a filtered dataset look
/// unfiltered: the count is checked against the library's). Call under the HDF5 lock.
pub(crate) fn chunk_filters(ds: &hdf5::Dataset) -> Option<Vec<Filter>> {
    if !ds.is_chunked() {
        return None;
    }
    let dcpl = ds.dcpl().ok()?;
    let filters = dcpl.filters();
    let mut opts: std::ffi::c_uint = 0;
    // SAFETY: a valid dataset creation property list and an out-pointer to one c_uint; the
    // caller holds the HDF5 lock.
    let (r, n) = unsafe {
        (
            hdf5_sys::h5p::H5Pget_chunk_opts(dcpl.id(), &mut opts),
            hdf5_sys::h5p::H5Pget_nfilters(dcpl.id()),
        )
    };
    let partial_raw = opts & hdf5_sys::h5d::H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS != 0;
    (r >= 0 && !partial_raw && usize::try_from(n).is_ok_and(|n| n == filters.len()))
        .then_some(filters)
}

/// Where the chunk starting at `offset` is stored: its filter mask, its address in the file
/// (relative to the file's base address, which is after any userblock) and its stored size; or
/// `None` if the chunk was never written. Call under the HDF5 lock.
pub(crate) fn locate_chunk(
    ds: &hdf5::Dataset,
    offset: &[usize],
    max_bytes: usize,
) -> Result<Option<(u32, u64, usize)>, String> {
    let off: Vec<hsize_t> = offset.iter().map(|&o| o as hsize_t).collect();
    let mut mask: u32 = 0;
    let mut addr: haddr_t = 0;
    let mut size: hsize_t = 0;
    // SAFETY: `off` has one entry per dataset axis and the out-pointers are valid; the caller
    // holds the HDF5 lock.
    let r = unsafe {
        hdf5_sys::h5d::H5Dget_chunk_info_by_coord(
            ds.id(),
            off.as_ptr(),
            &mut mask,
            &mut addr,
            &mut size,
        )
    };
    if r < 0 {
        return Err(format!(
            "cannot locate the chunk at {offset:?}: {}",
            h5_error()
        ));
    }
    if addr == HADDR_UNDEF {
        return Ok(None);
    }
    if size as u128 > max_bytes as u128 {
        // Shuffle keeps the size and deflate grows it by a few bytes at most: a larger stored
        // size is corrupt metadata, and must not become a huge allocation.
        return Err(format!(
            "the chunk at {offset:?} claims {size} stored bytes, more than the {max_bytes} it can take"
        ));
    }
    Ok(Some((mask, addr, size as usize)))
}

/// A descriptor of `file` to read raw chunks from without the HDF5 lock (`pread` needs no
/// shared position), at the addresses [`locate_chunk`] gives; `None` when such reads would not be
/// exact: the file is open for writing in this process (the library may hold written chunks
/// it has not flushed), uses a driver other than the POSIX one (data in memory, split over
/// several files, …), or starts with a userblock (HDF5 1.14.4 changed whether chunk
/// addresses count it: read through the library, the offset is right on every version).
/// Call under the HDF5 lock; the descriptor is a duplicate the caller owns.
pub(crate) fn lock_free_reader(file: &hdf5::File) -> Option<std::fs::File> {
    use std::os::fd::BorrowedFd;
    if !file.is_read_only() || file.userblock() != 0 {
        return None;
    }
    let fapl = file.access_plist().ok()?;
    if !matches!(fapl.driver(), hdf5::plist::file_access::FileDriver::Sec2) {
        return None;
    }
    let mut handle: *mut std::ffi::c_void = std::ptr::null_mut();
    // SAFETY: a valid file id and out-pointer; for the sec2 driver the handle points to the
    // file's descriptor (an `int`), which stays open while the file is (lock held).
    let r = unsafe { hdf5_sys::h5f::H5Fget_vfd_handle(file.id(), fapl.id(), &mut handle) };
    if r < 0 || handle.is_null() {
        return None;
    }
    // SAFETY: see above: `handle` points to an `int` descriptor, open while the lock is held.
    let fd = unsafe { BorrowedFd::borrow_raw(*handle.cast::<std::ffi::c_int>()) };
    // A duplicate (close-on-exec), ours to close.
    let owned = fd.try_clone_to_owned().ok()?;
    Some(std::fs::File::from(owned))
}

/// Read `size` stored bytes at `addr` through a descriptor from [`lock_free_reader`], without
/// the HDF5 lock.
pub(crate) fn pread_chunk(file: &std::fs::File, addr: u64, size: usize) -> Result<Vec<u8>, String> {
    pread_vec(file, addr, size)
}

/// Read an unfiltered chunk of `elems` values of `T` stored at `addr` straight into a new vector, without the HDF5 lock and without a byte buffer in between.
/// Only for [`blockarray::plain_number`] types stored in their native file type.
pub(crate) fn pread_values<T: 'static>(
    file: &std::fs::File,
    addr: u64,
    size: usize,
    elems: usize,
) -> Result<Vec<T>, String> {
    let nbytes = elems * std::mem::size_of::<T>();
    if size != nbytes {
        return Err(format!(
            "an unfiltered chunk of {elems} values should store {nbytes} bytes, not {size}"
        ));
    }
    pread_vec(file, addr, elems)
}

/// `len` values of a [`blockarray::plain_number`] type read with `pread` from file offset
/// `at` into a new vector's memory (no zeroing pass, no intermediate buffer).
fn pread_vec<T: 'static>(file: &std::fs::File, at: u64, len: usize) -> Result<Vec<T>, String> {
    use std::os::fd::AsRawFd;
    if !blockarray::plain_number::<T>() {
        return Err(format!(
            "internal: chunks of {} cannot be read as raw bytes",
            std::any::type_name::<T>()
        ));
    }
    let nbytes = len * std::mem::size_of::<T>();
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| format!("cannot allocate {nbytes} bytes for a chunk"))?;
    let mut done = 0usize;
    while done < nbytes {
        // SAFETY: the destination is the vector's spare capacity (`nbytes` bytes reserved),
        // written through a raw pointer; the descriptor is open.
        let r = unsafe {
            libc::pread(
                file.as_raw_fd(),
                v.as_mut_ptr().cast::<u8>().add(done).cast(),
                nbytes - done,
                (at + done as u64) as libc::off_t,
            )
        };
        match r {
            r if r > 0 => done += r as usize,
            0 => {
                return Err(format!(
                    "the file ends {done} bytes into a chunk of {nbytes} bytes at file offset {at}"
                ));
            }
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(format!(
                        "cannot read {nbytes} stored bytes at file offset {at}: {e}"
                    ));
                }
            }
        }
    }
    // SAFETY: all `len` values were written above, and any bit pattern is a valid `T`.
    unsafe { v.set_len(len) };
    Ok(v)
}

/// The stored bytes of the chunk starting at `offset` and the filter mask they were written
/// with, or `None` if the chunk was never written. Call under the HDF5 lock.
pub(crate) fn read_raw_chunk(
    ds: &hdf5::Dataset,
    offset: &[usize],
    max_bytes: usize,
) -> Result<Option<(u32, Vec<u8>)>, String> {
    let Some((_, _, size)) = locate_chunk(ds, offset, max_bytes)? else {
        return Ok(None);
    };
    let off: Vec<hsize_t> = offset.iter().map(|&o| o as hsize_t).collect();
    let mut buf = vec![0u8; size];
    let mut filters: u32 = 0;
    // SAFETY: `buf` holds the chunk's stored size, which H5Dread_chunk writes at most.
    let r = unsafe {
        hdf5_sys::h5d::H5Dread_chunk(
            ds.id(),
            H5P_DEFAULT,
            off.as_ptr(),
            &mut filters,
            buf.as_mut_ptr().cast(),
        )
    };
    if r < 0 {
        return Err(format!(
            "cannot read the chunk at {offset:?}: {}",
            h5_error()
        ));
    }
    Ok(Some((filters, buf)))
}

/// Store already-filtered bytes as the chunk at `offset` (all filters applied: mask 0). Call
/// under the HDF5 lock.
pub(crate) fn write_raw_chunk(
    ds: &hdf5::Dataset,
    offset: &[usize],
    bytes: &[u8],
) -> Result<(), String> {
    let off: Vec<hsize_t> = offset.iter().map(|&o| o as hsize_t).collect();
    // SAFETY: `off` has one entry per axis, `bytes` is valid for its length; lock held.
    let r = unsafe {
        hdf5_sys::h5d::H5Dwrite_chunk(
            ds.id(),
            H5P_DEFAULT,
            0,
            off.as_ptr(),
            bytes.len(),
            bytes.as_ptr().cast(),
        )
    };
    if r < 0 {
        return Err(format!(
            "cannot write the chunk at {offset:?}: {}",
            h5_error()
        ));
    }
    Ok(())
}

/// The message on top of HDF5's error stack (call right after a failed call, under the lock).
fn h5_error() -> String {
    match hdf5::h5check(-1i32) {
        Err(e) => e.to_string(),
        Ok(_) => "unknown HDF5 error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_round_trips_and_matches_hdf5_layout() {
        let data: Vec<u8> = (0..16).collect();
        let s = shuffle(&data, 4);
        // Elements [0 1 2 3] [4 5 6 7] ...: first bytes of every element come first.
        assert_eq!(&s[..4], &[0, 4, 8, 12]);
        assert_eq!(unshuffle(&s, 4), data);
        // A tail shorter than an element is kept as it is.
        let odd: Vec<u8> = (0..11).collect();
        assert_eq!(unshuffle(&shuffle(&odd, 4), 4), odd);
        assert_eq!(&shuffle(&odd, 4)[8..], &[8, 9, 10]);
    }

    #[test]
    fn deflate_round_trips() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let z = deflate(&data, 6);
        assert!(z.len() < data.len() / 10);
        assert_eq!(inflate(&z, 10).unwrap(), data);
    }

    #[test]
    fn stages_respect_the_mask_and_size() {
        let stages = [Stage::Shuffle(8), Stage::Deflate(4)];
        let values: Vec<f64> = (0..1000).map(|i| i as f64 * 0.5).collect();
        let mut bytes = Vec::new();
        f64::encode(&values, &mut bytes);
        let stored = encode_stages(bytes.clone(), &stages);
        let back: Vec<f64> = decode_chunk(stored, &stages, 0, 1000).unwrap();
        assert_eq!(back, values);
        // Deflate skipped (bit 1): the stored bytes are only shuffled.
        let shuffled = shuffle(&bytes, 8);
        let back: Vec<f64> = decode_chunk(shuffled, &stages, 0b10, 1000).unwrap();
        assert_eq!(back, values);
        // A wrong size or a corrupt stream is an error, not a panic.
        assert!(decode_chunk::<f64>(bytes.clone(), &[], 0, 999).is_err());
        assert!(decode_stages(vec![1, 2, 3], &stages, 0, 24).is_err());
        let mut z = deflate(&bytes, 1);
        z.truncate(z.len() / 2);
        assert!(inflate(&z, 8000).is_err());
    }

    #[test]
    fn a_stream_inflating_far_past_its_size_is_refused() {
        let bomb = deflate(&vec![0u8; 4 << 20], 9);
        assert!(bomb.len() < 64 << 10);
        let err = inflate(&bomb, 1000).unwrap_err();
        assert!(err.contains("inflates past"), "{err}");
        assert_eq!(inflate(&bomb, 4 << 20).unwrap().len(), 4 << 20);
    }

    #[test]
    fn pipelines_with_unknown_filters_are_refused() {
        assert_eq!(
            pipeline(&[Filter::Shuffle, Filter::Deflate(4)], 8),
            Some(vec![Stage::Shuffle(8), Stage::Deflate(4)])
        );
        assert_eq!(pipeline(&[], 8), None);
        assert_eq!(pipeline(&[Filter::Fletcher32, Filter::Deflate(4)], 8), None);
    }
}
