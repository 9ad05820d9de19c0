//! What travels between ranks besides the values' own encodings: message headers, errors and
//! output batches.
//!
//! Every message starts with a 16-byte header — kind (`u32`), task id (`u32`), total length of
//! the message (`u64`) — followed by its payload. A message longer than the largest MPI
//! message ([`MpiScheduler`](crate::MpiScheduler)'s `max_message`) is sent as several MPI
//! messages in a row; MPI keeps messages from one rank in order, so the receiver appends
//! parts until it has the total.

use dag_core::wire::{Reader, put_u64};
use dag_core::{Error, Key, Value};

/// A value a task on the receiving rank reads (id = the task).
pub(crate) const VALUE: u32 = 1;
/// The error that ended the sending rank's part.
pub(crate) const FAILED: u32 = 2;
/// The sender's outputs, at the end of a run (id unused).
pub(crate) const OUTPUTS: u32 = 3;

pub(crate) const HEADER: usize = 16;

/// A message buffer with room for its header, to be finished by [`finish`].
pub(crate) fn start() -> Vec<u8> {
    vec![0u8; HEADER]
}

/// Write the header of `buf` (made by [`start`], payload appended).
pub(crate) fn finish(mut buf: Vec<u8>, kind: u32, id: u32) -> Vec<u8> {
    let len = buf.len() as u64;
    buf[0..4].copy_from_slice(&kind.to_le_bytes());
    buf[4..8].copy_from_slice(&id.to_le_bytes());
    buf[8..16].copy_from_slice(&len.to_le_bytes());
    buf
}

/// The kind, id and total length in a message's first bytes.
pub(crate) fn header(bytes: &[u8]) -> Result<(u32, u32, usize), String> {
    if bytes.len() < HEADER {
        return Err(format!("a message of {} bytes has no header", bytes.len()));
    }
    let kind = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let id = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let len = usize::try_from(len).map_err(|_| "message too long for this machine")?;
    Ok((kind, id, len))
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn get_str(r: &mut Reader<'_>) -> Result<String, String> {
    let n = r.usize()?;
    String::from_utf8(r.bytes(n)?.to_vec()).map_err(|e| e.to_string())
}

fn put_key(out: &mut Vec<u8>, key: &Key) {
    put_str(out, key.name());
    put_u64(out, key.index().len() as u64);
    for &i in key.index() {
        put_u64(out, i as u64);
    }
}

fn get_key(r: &mut Reader<'_>) -> Result<Key, String> {
    let name = get_str(r)?;
    let n = r.usize()?;
    let index = (0..n).map(|_| r.usize()).collect::<Result<Vec<_>, _>>()?;
    Ok(Key::new(name, index))
}

/// Append `e` so that [`get_error`] rebuilds the same error on another rank: the variants a
/// run ends with keep their fields; any other becomes `Error::Scheduler` with its message.
pub(crate) fn put_error(out: &mut Vec<u8>, e: &Error) {
    match e {
        Error::TaskFailed {
            key,
            message,
            panicked,
        } => {
            put_u64(out, 0);
            put_key(out, key);
            put_str(out, message);
            put_u64(out, u64::from(*panicked));
        }
        Error::Cancelled { done, total } => {
            put_u64(out, 1);
            put_u64(out, *done as u64);
            put_u64(out, *total as u64);
        }
        Error::CannotSend {
            key,
            type_name,
            detail,
        } => {
            put_u64(out, 2);
            put_key(out, key);
            put_str(out, type_name);
            put_str(out, detail);
        }
        other => {
            put_u64(out, 3);
            put_str(
                out,
                &match other {
                    Error::Scheduler(m) => m.clone(),
                    e => e.to_string(),
                },
            );
        }
    }
}

/// Read an error written by [`put_error`].
pub(crate) fn get_error(r: &mut Reader<'_>) -> Result<Error, String> {
    Ok(match r.u64()? {
        0 => Error::TaskFailed {
            key: get_key(r)?,
            message: get_str(r)?,
            panicked: r.u64()? != 0,
        },
        1 => Error::Cancelled {
            done: r.usize()?,
            total: r.usize()?,
        },
        2 => Error::CannotSend {
            key: get_key(r)?,
            type_name: get_str(r)?,
            detail: get_str(r)?,
        },
        3 => Error::Scheduler(get_str(r)?),
        k => return Err(format!("unknown error kind {k}")),
    })
}

/// The same error, saying on which rank it happened (every rank returns this one).
pub(crate) fn on_rank(e: Error, rank: usize, ranks: usize) -> Error {
    let at = format!("on MPI rank {rank} of {ranks}");
    match e {
        Error::TaskFailed {
            key,
            message,
            panicked,
        } => Error::TaskFailed {
            key,
            message: format!("{message} ({at})"),
            panicked,
        },
        Error::CannotSend {
            key,
            type_name,
            detail,
        } => Error::CannotSend {
            key,
            type_name,
            detail: format!("{detail} ({at})"),
        },
        Error::Cancelled { .. } => e,
        Error::Scheduler(m) => Error::Scheduler(format!("{m} ({at})")),
        other => Error::Scheduler(format!("{other} ({at})")),
    }
}

/// Append the outputs `(task id, value)` as one batch; `Err` names the first whose type
/// cannot be encoded.
pub(crate) fn put_outputs(
    out: &mut Vec<u8>,
    values: &[(u32, &Value)],
) -> Result<(), (u32, String)> {
    put_u64(out, values.len() as u64);
    for &(id, v) in values {
        put_u64(out, u64::from(id));
        let at = out.len();
        put_u64(out, 0);
        dag_core::wire::encode(v, out).map_err(|e| (id, e))?;
        let len = (out.len() - at - 8) as u64;
        out[at..at + 8].copy_from_slice(&len.to_le_bytes());
    }
    Ok(())
}

/// Read a batch written by [`put_outputs`].
pub(crate) fn get_outputs(r: &mut Reader<'_>) -> Result<Vec<(u32, Value)>, String> {
    let n = r.usize()?;
    let mut out = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        let id = u32::try_from(r.u64()?).map_err(|_| "task id out of range")?;
        let len = r.usize()?;
        out.push((id, dag_core::wire::decode(r.bytes(len)?)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip() {
        let errors = [
            Error::TaskFailed {
                key: Key::new("x-1", [2, 3]),
                message: "boom".into(),
                panicked: true,
            },
            Error::Cancelled { done: 4, total: 9 },
            Error::CannotSend {
                key: Key::scalar("y"),
                type_name: "T".into(),
                detail: "no encoding".into(),
            },
            Error::Scheduler("bad".into()),
            Error::MissingKey {
                key: Key::scalar("z"),
            },
        ];
        for e in errors {
            let mut out = Vec::new();
            put_error(&mut out, &e);
            let back = get_error(&mut Reader::new(&out)).unwrap();
            assert_eq!(
                back.to_string().replace("scheduler failure: ", ""),
                e.to_string().replace("scheduler failure: ", "")
            );
        }
    }

    #[test]
    fn headers_and_outputs_round_trip() {
        let mut buf = start();
        put_outputs(&mut buf, &[(3, &Value::new(7u64)), (9, &Value::new(()))]).unwrap();
        let buf = finish(buf, OUTPUTS, 0);
        let (kind, _, len) = header(&buf).unwrap();
        assert_eq!((kind, len), (OUTPUTS, buf.len()));
        let got = get_outputs(&mut Reader::new(&buf[HEADER..])).unwrap();
        assert_eq!(got[0].0, 3);
        assert_eq!(*got[0].1.get::<u64>().unwrap(), 7);
        assert!(got[1].1.is::<()>());
        assert!(header(&buf[..3]).is_err());
    }
}
