//! One run across the ranks: the protocol every rank follows.
//!
//! 1. **Agree on the plan.** Every rank hashes its plan (keys, edges, outputs, placements);
//!    an all-gather of the hashes refuses, on every rank alike, a run whose ranks built
//!    different graphs (a program that is not SPMD, or keys that are not deterministic).
//! 2. **Partition** ([`crate::partition`]): every rank computes the same owner for every task.
//! 3. **Run the local share** with `sched-threaded`'s work-stealing loop
//!    ([`ThreadedScheduler::execute_part`]) on the rank's threads, while the calling thread
//!    drives the communication: it sends each exported value (encoded by the worker that
//!    made it, right after its task) to every rank with a reader, once, with non-blocking
//!    sends; it receives values and hands them to the local run; it passes failures on.
//! 4. **Fail fast.** A rank whose share fails (a task's error or panic, an unencodable value,
//!    cancellation) sends the error — saying its rank — to every other rank, whose shares then
//!    stop (running tasks finish, no new one starts).
//! 5. **Gather outputs** (if the share succeeded): each rank sends the outputs it computed to
//!    rank 0 (or to every rank) in one message.
//! 6. **End together.** A non-blocking all-gather of each rank's status and of how many
//!    messages it sent to each rank; every rank keeps receiving until it has all the messages
//!    sent to it and all its own sends have completed, so no message is left in flight and
//!    the run's communicator can be freed. Every rank then returns the same result: `Ok`, or
//!    the error of the lowest-numbered rank whose share failed first-hand.
//!
//! Nothing here waits without also receiving: a rank waiting for a value keeps accepting
//! messages (a failure among them), and a rank that has finished keeps serving the others
//! until the final all-gather completes. A rank that dies is reported by MPI itself:
//! `mpirun`/`srun` end the job (see the crate documentation).

use crate::codec;
use crate::comm::{Comm, Gathering, Send};
use crate::partition::{EVERY_RANK, assign, destinations};
use crate::{Elsewhere, Gather, MpiStats};
use dag_core::wire::Reader;
use dag_core::{Callbacks, Error, Execution, Plan, RunStats, Tokenizer, Value};
use sched_threaded::{Inbox, Part, ThreadedScheduler};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a run needs from the scheduler's configuration.
pub(crate) struct Config<'a> {
    pub(crate) threaded: &'a ThreadedScheduler,
    pub(crate) gather: Gather,
    pub(crate) max_message: usize,
    pub(crate) predict: &'a [usize],
    /// A failure of this rank before its share started (a panicking `on_start` hook): the
    /// share fails at once, and the other ranks are told, as for a failing task.
    pub(crate) failed_before: Option<Error>,
}

/// Values encoded by workers, waiting for the driver to send them.
#[derive(Default)]
struct Outbox {
    queue: Vec<(u32, Arc<Vec<u8>>)>,
    /// Set when the run's share is over: later exports are dropped (nothing may be sent
    /// after the message counts were exchanged).
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A hash of everything about the plan the ranks must agree on.
fn fingerprint(plan: &Plan, gather: Gather) -> u64 {
    let mut t = Tokenizer::new();
    t.write_u64(plan.len() as u64);
    t.write_u64(gather as u64);
    for id in 0..plan.len() {
        t.write_key(plan.key(id));
        t.write_u64(plan.placement(id) as u64);
        // The partition weighs tasks by their predicted sizes: ranks that predicted other
        // sizes would cut the plan differently and wait for values nobody sends.
        t.write_u64(plan.predicted_nbytes(id) as u64);
        t.write_u64(plan.deps(id).len() as u64);
        for &d in plan.deps(id) {
            t.write_u64(u64::from(d));
        }
    }
    for &o in plan.outputs() {
        t.write_u64(u64::from(o));
    }
    t.finish()
}

/// Run `plan` across the ranks of `comm` (every rank calls this with the same plan).
pub(crate) fn execute(
    cfg: &Config<'_>,
    comm: &Comm,
    plan: &Plan,
    callbacks: &dyn Callbacks,
) -> (Result<Execution, Error>, MpiStats) {
    let start = Instant::now();
    let (me, ranks) = (comm.rank, comm.size);
    let mut stats = MpiStats::new(me, ranks);
    // 1. Agree on the plan.
    let fp = fingerprint(plan, cfg.gather);
    let all = match comm.allgather(&[fp, plan.len() as u64]) {
        Ok(all) => all,
        Err(e) => return (Err(Error::Scheduler(e)), stats),
    };
    if let Some(r) = (1..ranks).find(|&r| all[2 * r] != all[0]) {
        let e = Error::Scheduler(format!(
            "MPI rank {r} built a different plan from rank 0's ({} tasks against {}, or the \
             same number with other keys, edges or predicted sizes): every rank must build the \
             same graph, in the same order (an SPMD program with deterministic keys)",
            all[2 * r + 1],
            all[1]
        ));
        return (Err(e), stats);
    }
    // 2. Partition.
    stats.predicted = cfg
        .predict
        .iter()
        .map(|&r| crate::partition::traffic(plan, r, cfg.gather))
        .collect();
    let owner = assign(plan, ranks, cfg.gather);
    let dests = destinations(plan, &owner, ranks);
    let local: Vec<bool> = owner
        .iter()
        .map(|&o| o == me as u32 || o == EVERY_RANK)
        .collect();
    let exported: Vec<bool> = (0..plan.len())
        .map(|id| local[id] && !dests[id].is_empty())
        .collect();
    // 3. The local share, with exports encoded by the workers.
    let outbox = Mutex::new(Outbox::default());
    let driver_thread = std::thread::current();
    let export = |id: usize, value: &Value| -> Result<(), Error> {
        let mut buf = codec::start();
        if let Err(why) = dag_core::wire::encode(value, &mut buf) {
            let to: Vec<String> = dests[id].iter().map(u32::to_string).collect();
            return Err(Error::CannotSend {
                key: plan.key(id).clone(),
                type_name: value.type_name().to_string(),
                detail: format!(
                    "it is computed on MPI rank {me} and read on rank{} {}, but {why}",
                    if to.len() == 1 { "" } else { "s" },
                    to.join(", ")
                ),
            });
        }
        let buf = Arc::new(codec::finish(buf, codec::VALUE, id as u32));
        let mut out = lock(&outbox);
        if !out.closed {
            out.queue.push((id as u32, buf));
            drop(out);
            driver_thread.unpark();
        }
        Ok(())
    };
    let part = Part {
        local: &local,
        exported: &exported,
        export: &export,
    };
    let mut driver = Driver {
        comm,
        cfg,
        plan,
        dests: &dests,
        owner: &owner,
        outbox: &outbox,
        sends: Vec::new(),
        sent_to: vec![0; ranks],
        received_from: vec![0; ranks],
        partial: (0..ranks).map(|_| None).collect(),
        failures: vec![None; ranks],
        told: None,
        my_error: None,
        outputs_in: Vec::new(),
        bytes_sent: 0,
        values_sent: 0,
        value_bytes_sent: 0,
        over: false,
    };
    let (outcome, end) = cfg
        .threaded
        .execute_part(plan, &part, callbacks, |inbox| driver.drive(inbox));
    // 6. The shared result.
    stats.wall = start.elapsed();
    let end = match end {
        Ok(end) => end,
        // The communication itself failed (an MPI error, a message this rank cannot read):
        // this rank cannot finish the run's final gather, and returning would leave the
        // others waiting in it for ever. End the job, as a panic in this code does.
        Err(e) => {
            eprintln!(
                "sched-mpi: rank {}: the communication failed ({e}); aborting the MPI job so \
                 that no rank waits for this one",
                comm.rank
            );
            crate::comm::abort(71)
        }
    };
    stats.tasks = end.column(1);
    stats.bytes_sent = end.column(2);
    stats.messages = end.column(3);
    stats.peak_bytes = end.column(4);
    stats.value_bytes = end.column(5);
    stats.values = end.column(6);
    if let Some(e) = end.error {
        return (Err(e), stats);
    }
    // Every rank reached this point: decode the outputs received, and agree on it.
    let mut received = Vec::new();
    let decoded = driver.outputs_in.drain(..).try_for_each(|(source, bytes)| {
        let got = codec::get_outputs(&mut Reader::new(&bytes)).map_err(|why| {
            format!("the outputs MPI rank {source} sent cannot be decoded: {why}")
        })?;
        received.extend(got);
        Ok(())
    });
    if let Err(why) = comm.agree(decoded) {
        return (Err(Error::Scheduler(why)), stats);
    }
    let run = match outcome {
        Ok(run) => run,
        // Every rank reported success, so this one's share cannot have failed.
        Err(e) => return (Err(e), stats),
    };
    let mut values = run.outputs;
    for (id, v) in received {
        if let Some(pos) = plan.outputs().iter().position(|&o| o == id) {
            for (slot, &o) in values.iter_mut().zip(plan.outputs()).skip(pos) {
                if o == id && slot.is_none() {
                    *slot = Some(v.clone());
                }
            }
        }
    }
    let values: Vec<Value> = values
        .into_iter()
        .zip(plan.outputs())
        .map(|(v, &o)| {
            v.unwrap_or_else(|| {
                Value::new(Elsewhere {
                    key: plan.key(o as usize).clone(),
                    rank: owner[o as usize] as usize,
                })
            })
        })
        .collect();
    let run_stats = RunStats {
        tasks: stats.tasks.iter().sum(),
        wall: stats.wall,
        peak_bytes: stats.peak_bytes.iter().copied().max().unwrap_or(0),
        threads: run.stats.threads,
    };
    (
        Ok(Execution {
            values,
            stats: run_stats,
        }),
        stats,
    )
}

/// What every rank knows once the final all-gather has completed.
struct End {
    /// Per rank: status, tasks, bytes sent, messages sent, peak bytes, value bytes, values,
    /// then messages sent to each rank.
    table: Vec<u64>,
    width: usize,
    ranks: usize,
    /// The run's error, the same on every rank.
    error: Option<Error>,
}

impl End {
    fn column(&self, c: usize) -> Vec<usize> {
        (0..self.ranks)
            .map(|r| self.table[r * self.width + c] as usize)
            .collect()
    }
}

const OK: u64 = 0;
/// The rank's share failed first-hand (its error was sent to every rank).
const FAILED: u64 = 1;
/// The rank's share was stopped by another rank's failure.
const STOPPED: u64 = 2;
const COLUMNS: usize = 7;

/// The communication side of one rank's run (runs on the calling thread).
struct Driver<'a> {
    comm: &'a Comm,
    cfg: &'a Config<'a>,
    plan: &'a Plan,
    dests: &'a [Vec<u32>],
    owner: &'a [u32],
    outbox: &'a Mutex<Outbox>,
    sends: Vec<Send>,
    sent_to: Vec<u64>,
    received_from: Vec<u64>,
    /// Per source: a message whose parts are still arriving, and its total length.
    partial: Vec<Option<(Vec<u8>, usize)>>,
    /// Errors received from ranks whose shares failed.
    failures: Vec<Option<Error>>,
    /// The text of the remote error this rank's share was stopped with, if any.
    told: Option<String>,
    /// This rank's own failure, as sent to the others.
    my_error: Option<Error>,
    /// Batches of outputs received, undecoded: (sending rank, bytes).
    outputs_in: Vec<(usize, Vec<u8>)>,
    bytes_sent: u64,
    values_sent: u64,
    value_bytes_sent: u64,
    /// The local share is over: values arriving now are not needed.
    over: bool,
}

impl Driver<'_> {
    fn drive(&mut self, inbox: &Inbox<'_>) -> Result<End, String> {
        let mut idle = Backoff::default();
        if let Some(e) = self.cfg.failed_before.clone() {
            inbox.fail(e);
        }
        // 3 and 4: until the local share is over.
        loop {
            let busy = self.progress(Some(inbox))?;
            self.report_failure(inbox)?;
            if inbox.is_over() {
                break;
            }
            idle.wait(busy);
        }
        self.report_failure(inbox)?;
        self.over = true;
        let failed = inbox.error().is_some();
        // Exports made before the share ended are sent (all of them, on success); later
        // ones (tasks finishing after a failure) are dropped.
        let rest = {
            let mut out = lock(self.outbox);
            out.closed = true;
            std::mem::take(&mut out.queue)
        };
        if !failed {
            for (id, buf) in rest {
                self.send_value(id, &buf)?;
            }
            // 5. Outputs. One that cannot be encoded fails this rank's share like a failing
            // task: the other ranks are told and every rank ends with the error (returning
            // before the all-gather below would leave them waiting in it).
            if let Err(e) = self.send_outputs(inbox)? {
                self.declare_failure(e)?;
            }
        }
        let status = match (&self.my_error, failed) {
            (Some(_), _) => FAILED,
            (None, true) => STOPPED,
            (None, false) => OK,
        };
        // 6. The final all-gather, receiving meanwhile.
        let ranks = self.comm.size;
        let mut mine = vec![
            status,
            inbox.done() as u64,
            self.bytes_sent,
            self.sent_to.iter().sum(),
            inbox.peak_bytes() as u64,
            self.value_bytes_sent,
            self.values_sent,
        ];
        mine.extend_from_slice(&self.sent_to);
        let width = mine.len();
        let mut gathering: Gathering = self.comm.iallgather(mine)?;
        let table = loop {
            let busy = self.progress(None)?;
            if let Some(t) = gathering.test() {
                break t;
            }
            idle.wait(busy);
        };
        drop(gathering);
        let me = self.comm.rank;
        let expected: Vec<u64> = (0..ranks)
            .map(|r| table[r * width + COLUMNS + me])
            .collect();
        loop {
            let busy = self.progress(None)?;
            if self.received_from == expected && self.sends.is_empty() {
                break;
            }
            idle.wait(busy);
        }
        let first_failed = (0..ranks).find(|&r| table[r * width] == FAILED);
        let error = first_failed.map(|r| {
            if r == me {
                self.my_error
                    .clone()
                    .expect("this rank reported its failure")
            } else {
                self.failures[r].clone().unwrap_or_else(|| {
                    Error::Scheduler(format!(
                        "MPI rank {r} reported a failure whose error did not arrive"
                    ))
                })
            }
        });
        let error = error.or_else(|| {
            (0..ranks).find(|&r| table[r * width] == STOPPED).map(|r| {
                Error::Scheduler(format!(
                    "MPI rank {r} was stopped by a failure no rank reported"
                ))
            })
        });
        Ok(End {
            table,
            width,
            ranks,
            error,
        })
    }

    /// If this rank's share has failed first-hand and the others were not told yet, tell them.
    fn report_failure(&mut self, inbox: &Inbox<'_>) -> Result<(), String> {
        if self.my_error.is_some() {
            return Ok(());
        }
        let Some(e) = inbox.error() else {
            return Ok(());
        };
        if self.told.as_deref() == Some(e.to_string().as_str()) {
            return Ok(()); // stopped by another rank's failure
        }
        self.declare_failure(e)
    }

    /// Make `e` this rank's own failure and send it to every other rank.
    fn declare_failure(&mut self, e: Error) -> Result<(), String> {
        let e = codec::on_rank(e, self.comm.rank, self.comm.size);
        let mut buf = codec::start();
        codec::put_error(&mut buf, &e);
        let buf = Arc::new(codec::finish(buf, codec::FAILED, 0));
        for r in 0..self.comm.size {
            if r != self.comm.rank {
                self.send(&buf, r)?;
            }
        }
        self.my_error = Some(e);
        Ok(())
    }

    /// Send the outputs this rank computed to the ranks that gather them and do not have
    /// them yet, one message per rank. `Ok(Err(_))`: an output that cannot be sent (this
    /// rank's failure); `Err`: communication failed.
    fn send_outputs(&mut self, inbox: &Inbox<'_>) -> Result<Result<(), Error>, String> {
        let me = self.comm.rank as u32;
        let plan = self.plan;
        let receivers: Vec<u32> = match self.cfg.gather {
            Gather::Root if me == 0 => Vec::new(),
            Gather::Root => vec![0],
            Gather::All => (0..self.comm.size as u32).filter(|&r| r != me).collect(),
        };
        for r in receivers {
            let mut ids: Vec<u32> = plan
                .outputs()
                .iter()
                .copied()
                .filter(|&o| self.owner[o as usize] == me && !self.dests[o as usize].contains(&r))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() {
                continue;
            }
            let values = match ids
                .iter()
                .map(|&id| {
                    inbox.held(id as usize).map(|v| (id, v)).ok_or_else(|| {
                        Error::Scheduler(format!(
                            "output {} is not held on MPI rank {me}",
                            plan.key(id as usize)
                        ))
                    })
                })
                .collect::<Result<Vec<_>, Error>>()
            {
                Ok(values) => values,
                Err(e) => return Ok(Err(e)),
            };
            let refs: Vec<(u32, &Value)> = values.iter().map(|(id, v)| (*id, v)).collect();
            let mut buf = codec::start();
            if let Err((id, why)) = codec::put_outputs(&mut buf, &refs) {
                let type_name = refs
                    .iter()
                    .find(|(i, _)| *i == id)
                    .map_or("value", |(_, v)| v.type_name())
                    .to_string();
                return Ok(Err(Error::CannotSend {
                    key: plan.key(id as usize).clone(),
                    type_name,
                    detail: format!(
                        "it is an output computed on MPI rank {me} and gathered to rank {r}, but \
                         {why}"
                    ),
                }));
            }
            let buf = Arc::new(codec::finish(buf, codec::OUTPUTS, 0));
            self.send(&buf, r as usize)?;
        }
        Ok(Ok(()))
    }

    fn send_value(&mut self, id: u32, buf: &Arc<Vec<u8>>) -> Result<(), String> {
        let dests = &self.dests[id as usize];
        for &d in dests {
            self.send(buf, d as usize)?;
            self.values_sent += 1;
            self.value_bytes_sent += (buf.len() - codec::HEADER) as u64;
        }
        Ok(())
    }

    /// Start sending `buf` to `dest`, in parts of at most `max_message` bytes.
    fn send(&mut self, buf: &Arc<Vec<u8>>, dest: usize) -> Result<(), String> {
        let step = self.cfg.max_message.max(codec::HEADER);
        let mut at = 0;
        loop {
            let end = (at + step).min(buf.len());
            self.sends.push(self.comm.isend(buf, at..end, dest)?);
            self.sent_to[dest] += 1;
            self.bytes_sent += (end - at) as u64;
            at = end;
            if at >= buf.len() {
                return Ok(());
            }
        }
    }

    /// Send what the workers exported, complete finished sends, receive what has arrived.
    /// Whether anything happened.
    fn progress(&mut self, inbox: Option<&Inbox<'_>>) -> Result<bool, String> {
        let mut busy = false;
        let queued = std::mem::take(&mut lock(self.outbox).queue);
        for (id, buf) in queued {
            busy = true;
            self.send_value(id, &buf)?;
        }
        let before = self.sends.len();
        self.sends.retain_mut(|s| !s.test());
        busy |= self.sends.len() != before;
        while let Some((source, len)) = self.comm.probe()? {
            busy = true;
            self.receive(source, len, inbox)?;
        }
        Ok(busy)
    }

    fn receive(
        &mut self,
        source: usize,
        len: usize,
        inbox: Option<&Inbox<'_>>,
    ) -> Result<(), String> {
        self.received_from[source] += 1;
        let (mut buf, total) = self.partial[source].take().unwrap_or_default();
        self.comm.recv(source, len, &mut buf)?;
        let total = if total == 0 {
            codec::header(&buf)?.2
        } else {
            total
        };
        if buf.len() < total {
            self.partial[source] = Some((buf, total));
            return Ok(());
        }
        let (kind, id, _) = codec::header(&buf)?;
        let payload = &buf[codec::HEADER..];
        match kind {
            codec::VALUE => {
                if self.over {
                    return Ok(());
                }
                let Some(inbox) = inbox else { return Ok(()) };
                match dag_core::wire::decode(payload) {
                    Ok(v) => inbox.deliver(id as usize, v),
                    Err(why) => inbox.fail(Error::Scheduler(format!(
                        "the value of {} sent by MPI rank {source} cannot be decoded: {why}",
                        self.plan.key(id as usize)
                    ))),
                }
            }
            codec::FAILED => {
                let e = codec::get_error(&mut Reader::new(payload))?;
                if let Some(inbox) = inbox
                    && !self.over
                {
                    if self.told.is_none() && inbox.error().is_none() {
                        self.told = Some(e.to_string());
                    }
                    inbox.fail(e.clone());
                }
                self.failures[source] = Some(e);
            }
            codec::OUTPUTS => {
                // Decoded after the final gather, when every rank takes part in agreeing on
                // the outcome: a batch failing here would end this rank's drive alone, and
                // the others would wait in the gather for ever.
                self.outputs_in.push((source, payload.to_vec()));
            }
            k => {
                return Err(format!(
                    "MPI rank {source} sent a message of unknown kind {k}"
                ));
            }
        }
        Ok(())
    }
}

/// Waiting between polls of MPI when nothing happens: spin briefly, then sleep a little
/// longer each round up to half a millisecond (a parked driver is woken at once by a new
/// export). Open MPI's own blocking calls spin at 100 % of a core; on shared cores that
/// would slow the workers down.
#[derive(Default)]
struct Backoff {
    rounds: u32,
}

impl Backoff {
    fn wait(&mut self, busy: bool) {
        if busy {
            self.rounds = 0;
            return;
        }
        self.rounds += 1;
        if self.rounds < 16 {
            std::hint::spin_loop();
        } else {
            let micros = (u64::from(self.rounds - 15) * 10).min(500);
            std::thread::park_timeout(Duration::from_micros(micros));
        }
    }
}
