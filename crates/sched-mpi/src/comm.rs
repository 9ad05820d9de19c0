//! The MPI calls a run makes, behind a small safe interface: a run-private communicator,
//! non-blocking byte sends, probing and receiving byte messages, two all-gathers of `u64`s
//! (blocking, and non-blocking so the caller keeps receiving while it waits), and the
//! agreement on an outcome built on the first.
//!
//! Only the thread driving a run calls into MPI (one run at a time per process, see
//! `RUN_LOCK`), so `MPI_THREAD_SERIALIZED` is enough. Every call's error code is checked; MPI's
//! default error handler (`MPI_ERRORS_ARE_FATAL`) aborts the job on a communication failure
//! before that, which is how a dead peer is reported.

use mpi::ffi;
use std::os::raw::{c_int, c_void};
use std::sync::Arc;

/// The tag of every message of a run (the kind is in the message's header).
const TAG: c_int = 7;

fn check(code: c_int, what: &str) -> Result<(), String> {
    if code == 0 {
        Ok(())
    } else {
        Err(format!("{what} failed with MPI error code {code}"))
    }
}

/// A communicator private to one run: messages of a run can never be mistaken for another's
/// (or for the user's own MPI traffic). Freed on drop.
pub(crate) struct Comm {
    raw: ffi::MPI_Comm,
    pub(crate) rank: usize,
    pub(crate) size: usize,
}

impl Comm {
    /// A duplicate of `MPI_COMM_WORLD` (collective: every rank calls it).
    pub(crate) fn dup_world() -> Result<Comm, String> {
        // SAFETY: MPI is initialised (checked by the caller); the out-pointers are valid.
        unsafe {
            let mut raw = ffi::RSMPI_COMM_NULL;
            check(
                ffi::MPI_Comm_dup(ffi::RSMPI_COMM_WORLD, &mut raw),
                "MPI_Comm_dup",
            )?;
            let (mut rank, mut size) = (0, 0);
            check(ffi::MPI_Comm_rank(raw, &mut rank), "MPI_Comm_rank")?;
            check(ffi::MPI_Comm_size(raw, &mut size), "MPI_Comm_size")?;
            Ok(Comm {
                raw,
                rank: rank as usize,
                size: size as usize,
            })
        }
    }

    /// Every rank's `outcome` combined, on every rank alike: `Ok` when all had `Ok`, else the
    /// lowest failing rank's message (sent to everyone), naming that rank. A collective call.
    pub(crate) fn agree(&self, outcome: Result<(), String>) -> Result<(), String> {
        let all = self.allgather(&[u64::from(outcome.is_ok())])?;
        let Some(r) = all.iter().position(|&v| v == 0) else {
            return Ok(());
        };
        let mut msg = match (&outcome, r == self.rank) {
            (Err(m), true) => m.clone().into_bytes(),
            _ => Vec::new(),
        };
        let len = self.allgather(&[msg.len() as u64])?[r] as usize;
        msg.resize(len, 0);
        let words: Vec<u64> = msg
            .chunks(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w[..c.len()].copy_from_slice(c);
                u64::from_le_bytes(w)
            })
            .collect();
        let all = self.allgather(&words)?;
        let n = words.len();
        let bytes: Vec<u8> = all[r * n..(r + 1) * n]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .take(len)
            .collect();
        Err(format!(
            "{} (on MPI rank {r} of {})",
            String::from_utf8_lossy(&bytes),
            self.size
        ))
    }

    /// Every rank's `mine` (all ranks pass the same length), concatenated in rank order.
    pub(crate) fn allgather(&self, mine: &[u64]) -> Result<Vec<u64>, String> {
        let mut all = vec![0u64; mine.len() * self.size];
        // SAFETY: the buffers hold `mine.len()` and `size * mine.len()` u64s.
        unsafe {
            check(
                ffi::MPI_Allgather(
                    mine.as_ptr().cast::<c_void>(),
                    mine.len() as c_int,
                    ffi::RSMPI_UINT64_T,
                    all.as_mut_ptr().cast::<c_void>(),
                    mine.len() as c_int,
                    ffi::RSMPI_UINT64_T,
                    self.raw,
                ),
                "MPI_Allgather",
            )?;
        }
        Ok(all)
    }

    /// Start an all-gather of `mine`; [`Gathering::test`] completes it.
    pub(crate) fn iallgather(&self, mine: Vec<u64>) -> Result<Gathering, String> {
        let mut all = vec![0u64; mine.len() * self.size].into_boxed_slice();
        let mine = mine.into_boxed_slice();
        // SAFETY: reading an immutable handle constant of the MPI library.
        let mut req = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: both buffers live in the returned `Gathering` until the request completes
        // (its drop waits for it); boxed slices do not move when the struct does.
        unsafe {
            check(
                ffi::MPI_Iallgather(
                    mine.as_ptr().cast::<c_void>(),
                    mine.len() as c_int,
                    ffi::RSMPI_UINT64_T,
                    all.as_mut_ptr().cast::<c_void>(),
                    mine.len() as c_int,
                    ffi::RSMPI_UINT64_T,
                    self.raw,
                    &mut req,
                ),
                "MPI_Iallgather",
            )?;
        }
        Ok(Gathering {
            _mine: mine,
            all: Some(all),
            req,
        })
    }

    /// Start sending `buf[range]` to `dest`; the returned send keeps the buffer alive.
    pub(crate) fn isend(
        &self,
        buf: &Arc<Vec<u8>>,
        range: std::ops::Range<usize>,
        dest: usize,
    ) -> Result<Send, String> {
        let part = &buf[range];
        // SAFETY: reading an immutable handle constant of the MPI library.
        let mut req = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: the bytes stay alive (and unmoved: they are behind the `Arc`) in the
        // returned `Send` until the request completes; its length fits a c_int (the caller
        // splits larger messages).
        unsafe {
            check(
                ffi::MPI_Isend(
                    part.as_ptr().cast::<c_void>(),
                    c_int::try_from(part.len()).map_err(|_| "message part too long")?,
                    ffi::RSMPI_UINT8_T,
                    dest as c_int,
                    TAG,
                    self.raw,
                    &mut req,
                ),
                "MPI_Isend",
            )?;
        }
        Ok(Send {
            _buf: buf.clone(),
            req,
        })
    }

    /// The source and length of a message waiting to be received, if any.
    pub(crate) fn probe(&self) -> Result<Option<(usize, usize)>, String> {
        // SAFETY: a zeroed status is a valid out-parameter.
        unsafe {
            let mut flag: c_int = 0;
            let mut status: ffi::MPI_Status = std::mem::zeroed();
            check(
                ffi::MPI_Iprobe(ffi::RSMPI_ANY_SOURCE, TAG, self.raw, &mut flag, &mut status),
                "MPI_Iprobe",
            )?;
            if flag == 0 {
                return Ok(None);
            }
            let mut count: c_int = 0;
            check(
                ffi::MPI_Get_count(&status, ffi::RSMPI_UINT8_T, &mut count),
                "MPI_Get_count",
            )?;
            Ok(Some((status.MPI_SOURCE as usize, count as usize)))
        }
    }

    /// Receive the probed message of `len` bytes from `source` into `out` (appended).
    pub(crate) fn recv(&self, source: usize, len: usize, out: &mut Vec<u8>) -> Result<(), String> {
        out.reserve(len);
        let start = out.len();
        // SAFETY: `out` has `len` bytes of spare capacity; MPI writes exactly the probed
        // message's `len` bytes there, after which they are initialised.
        unsafe {
            let mut status: ffi::MPI_Status = std::mem::zeroed();
            check(
                ffi::MPI_Recv(
                    out.as_mut_ptr().add(start).cast::<c_void>(),
                    len as c_int,
                    ffi::RSMPI_UINT8_T,
                    source as c_int,
                    TAG,
                    self.raw,
                    &mut status,
                ),
                "MPI_Recv",
            )?;
            out.set_len(start + len);
        }
        Ok(())
    }
}

impl Drop for Comm {
    fn drop(&mut self) {
        // SAFETY: the communicator was made by MPI_Comm_dup and every request on it has
        // completed (sends and gatherings wait for theirs on drop).
        unsafe {
            ffi::MPI_Comm_free(&mut self.raw);
        }
    }
}

/// Test `req`; true once it has completed (then it is the null request).
fn test(req: &mut ffi::MPI_Request) -> bool {
    let mut flag: c_int = 0;
    // SAFETY: `req` is a live request or the null request (for which MPI_Test succeeds at
    // once); the status is ignored.
    unsafe {
        ffi::MPI_Test(req, &mut flag, ffi::RSMPI_STATUS_IGNORE);
    }
    flag != 0
}

fn wait(req: &mut ffi::MPI_Request) {
    // SAFETY: as in `test`.
    unsafe {
        ffi::MPI_Wait(req, ffi::RSMPI_STATUS_IGNORE);
    }
}

/// A message being sent, with its bytes.
pub(crate) struct Send {
    _buf: Arc<Vec<u8>>,
    req: ffi::MPI_Request,
}

impl Send {
    /// Whether the send has completed (the buffer may then be dropped).
    pub(crate) fn test(&mut self) -> bool {
        test(&mut self.req)
    }
}

impl Drop for Send {
    fn drop(&mut self) {
        // Never free a buffer MPI may still read. (The protocol waits for every send before a
        // run ends; this only matters if the run unwinds.)
        wait(&mut self.req);
    }
}

/// An all-gather in progress.
pub(crate) struct Gathering {
    _mine: Box<[u64]>,
    all: Option<Box<[u64]>>,
    req: ffi::MPI_Request,
}

impl Gathering {
    /// Every rank's values, once the all-gather has completed.
    pub(crate) fn test(&mut self) -> Option<Vec<u64>> {
        if test(&mut self.req) {
            self.all.take().map(Vec::from)
        } else {
            None
        }
    }
}

impl Drop for Gathering {
    fn drop(&mut self) {
        wait(&mut self.req);
    }
}

/// End the whole MPI job (every rank) with `code`: the last resort when this rank can no
/// longer take part in a run, so that the others do not wait for it forever.
pub(crate) fn abort(code: i32) -> ! {
    // SAFETY: MPI_Abort may be called at any time after initialisation.
    unsafe {
        ffi::MPI_Abort(ffi::RSMPI_COMM_WORLD, code);
    }
    std::process::abort()
}
