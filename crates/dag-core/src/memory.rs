//! Memory: what the machine has available, how schedulers count the bytes they hold, and how
//! byte counts are shown to people.

/// Live-bytes accounting shared by the schedulers: the current total of held values and the
/// highest it has been.
///
/// The total is signed: a parallel scheduler that publishes per-worker deltas in batches may
/// publish a release before the matching hold, and the total must not wrap when it dips.
#[derive(Debug, Default)]
pub struct MemoryMeter {
    live: std::sync::atomic::AtomicIsize,
    peak: std::sync::atomic::AtomicIsize,
}

impl MemoryMeter {
    /// Values of `nbytes` in total are now held.
    pub fn hold(&self, nbytes: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let n = nbytes as isize;
        let now = self.live.fetch_add(n, Relaxed) + n;
        self.peak.fetch_max(now, Relaxed);
    }

    /// Values of `nbytes` in total were dropped.
    pub fn release(&self, nbytes: usize) {
        self.live
            .fetch_sub(nbytes as isize, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bytes held now.
    pub fn live(&self) -> usize {
        self.live.load(std::sync::atomic::Ordering::Relaxed).max(0) as usize
    }

    /// The most bytes held at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::Relaxed).max(0) as usize
    }
}

/// Bytes of memory available to this process now: the kernel's estimate of what can be
/// allocated without swapping (`MemAvailable` in `/proc/meminfo`), or `None` where that is
/// not known (other systems). Results and persisted arrays that would not fit are refused
/// against it, and memory bounds default to a share of it.
pub fn available_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// A byte count for people, in decimal units like dask's repr: `512 B`, `8.00 MB`, `1.50 GB`.
///
/// ```
/// assert_eq!(dag_core::fmt_bytes(512), "512 B");
/// assert_eq!(dag_core::fmt_bytes(8_000_000), "8.00 MB");
/// assert_eq!(dag_core::fmt_bytes(320_000_000_000), "320.00 GB");
/// ```
pub fn fmt_bytes(n: usize) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let n = available_memory().expect("MemAvailable is in /proc/meminfo");
            assert!(n > 1 << 20, "{n}");
        }
    }

    #[test]
    fn a_meter_tracks_live_and_peak_bytes() {
        let m = MemoryMeter::default();
        m.hold(100);
        m.hold(50);
        m.release(120);
        m.hold(10);
        assert_eq!((m.live(), m.peak()), (40, 150));
    }
}
