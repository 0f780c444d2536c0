//! Resident memory and CPU time of a process and all its descendants (Dovecot forks one process
//! per connection), read from `/proc` and sampled on a fixed wall-clock period by a background
//! thread, with named marks at the load driver's phase boundaries.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Clock ticks per second of `/proc/PID/stat` times: Linux's `USER_HZ`, 100 on every architecture
/// Linux supports today.
pub const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// The default sampling period.
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(50);

/// Errors of the sampler.
#[derive(Debug, thiserror::Error)]
pub enum RssError {
    /// The process to watch does not exist (or `/proc` is not mounted).
    #[error("no process {0} in /proc")]
    NoProcess(u32),
    /// The sampling thread could not start.
    #[error("cannot start the sampling thread: {0}")]
    Thread(std::io::Error),
}

/// One reading of the tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Milliseconds since the sampler started.
    pub ms: u64,
    /// Sum of `VmRSS` over the process and its descendants, in bytes.
    pub rss_bytes: u64,
    /// Sum of user + system time (own and reaped children's) over the tree, in clock ticks.
    pub cpu_ticks: u64,
    /// Processes in the tree.
    pub processes: u32,
}

/// A named point of the run (a phase boundary) with the reading taken then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mark {
    /// What starts or ends here.
    pub name: String,
    /// The reading.
    pub sample: Sample,
    /// The tree's proportional set size then, in bytes (see [`read_tree_pss`]).
    pub pss_bytes: u64,
}

/// What a sampler recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Series {
    /// Readings in time order (marks included).
    pub samples: Vec<Sample>,
    /// The marks, in order.
    pub marks: Vec<Mark>,
}

impl Series {
    /// The reading of the mark named `name`.
    pub fn mark(&self, name: &str) -> Option<&Sample> {
        self.marks
            .iter()
            .find(|m| m.name == name)
            .map(|m| &m.sample)
    }

    /// The proportional set size at the mark named `name`.
    pub fn mark_pss(&self, name: &str) -> Option<u64> {
        self.marks
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.pss_bytes)
    }

    /// The highest RSS between two times (both included), in bytes.
    pub fn peak_between(&self, from_ms: u64, to_ms: u64) -> u64 {
        self.samples
            .iter()
            .filter(|s| (from_ms..=to_ms).contains(&s.ms))
            .map(|s| s.rss_bytes)
            .max()
            .unwrap_or(0)
    }

    /// The most processes seen in the tree.
    pub fn processes_max(&self) -> u32 {
        self.samples.iter().map(|s| s.processes).max().unwrap_or(0)
    }
}

/// `(ppid, utime + stime + cutime + cstime)` from the text of `/proc/PID/stat`.
pub fn parse_stat(text: &str) -> Option<(u32, u64)> {
    // The command name, in parentheses, may hold spaces and parentheses: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): ppid is field 4, utime..cstime are fields 14..=17.
    let ppid = fields.get(1)?.parse().ok()?;
    let mut cpu = 0u64;
    for i in 11..=14 {
        cpu = cpu.saturating_add(fields.get(i)?.parse().ok()?);
    }
    Some((ppid, cpu))
}

/// `VmRSS` in bytes from the text of `/proc/PID/status` (0 for a kernel thread or a zombie).
pub fn parse_vm_rss(text: &str) -> u64 {
    parse_kb_field(text, "VmRSS:")
}

/// A `kB` field (`VmRSS:`, `Pss:` ...) of a `/proc` text, in bytes (0 when absent).
pub fn parse_kb_field(text: &str, field: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The processes of the tree rooted at `root` (root first) with their CPU ticks; `None` when
/// `root` is gone.
fn tree(root: u32) -> Option<Vec<(u32, u64)>> {
    // Every process's parent and CPU time; processes that vanish meanwhile are skipped.
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut cpu: BTreeMap<u32, u64> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((ppid, ticks)) = parse_stat(&stat) {
            children.entry(ppid).or_default().push(pid);
            cpu.insert(pid, ticks);
        }
    }
    cpu.get(&root)?;
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        out.push((pid, cpu.get(&pid).copied().unwrap_or(0)));
        if let Some(kids) = children.get(&pid) {
            queue.extend(kids);
        }
    }
    Some(out)
}

/// Reads the tree rooted at `root` now (`ms` left 0); `None` when `root` is gone.
pub fn read_tree(root: u32) -> Option<Sample> {
    let mut sample = Sample::default();
    for (pid, ticks) in tree(root)? {
        sample.processes += 1;
        sample.cpu_ticks += ticks;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        sample.rss_bytes += parse_vm_rss(&status);
    }
    Some(sample)
}

/// The proportional set size of the tree rooted at `root` (`Pss` of `/proc/PID/smaps_rollup`,
/// summed: a page shared by k processes counts 1/k in each), in bytes; `None` when `root` is
/// gone. Slower than [`read_tree`]: read at marks only.
pub fn read_tree_pss(root: u32) -> Option<u64> {
    let mut pss = 0;
    for (pid, _) in tree(root)? {
        let rollup =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        pss += parse_kb_field(&rollup, "Pss:");
    }
    Some(pss)
}

struct Shared {
    root: u32,
    started: Instant,
    stop: AtomicBool,
    series: Mutex<Series>,
}

impl Shared {
    fn series(&self) -> MutexGuard<'_, Series> {
        // A panicking sampler thread leaves a consistent vector behind: keep using it.
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the tree and appends the reading (none when the root is gone).
    fn sample(&self) -> Option<Sample> {
        let mut sample = read_tree(self.root)?;
        // Timed under the lock, so that readings of two threads stay in time order.
        let mut series = self.series();
        sample.ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        series.samples.push(sample);
        Some(sample)
    }
}

/// Samples a process tree every period on its own thread until [`Sampler::finish`].
pub struct Sampler {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling the tree of `root` every `period` (the first reading is taken at once).
    pub fn start(root: u32, period: Duration) -> Result<Sampler, RssError> {
        let shared = Arc::new(Shared {
            root,
            started: Instant::now(),
            stop: AtomicBool::new(false),
            series: Mutex::new(Series::default()),
        });
        if shared.sample().is_none() {
            return Err(RssError::NoProcess(root));
        }
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("rss-{root}"))
            .spawn(move || {
                let mut next = Instant::now() + period;
                while !worker.stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    }
                    next += period;
                    if worker.sample().is_none() {
                        break;
                    }
                }
            })
            .map_err(RssError::Thread)?;
        Ok(Sampler {
            shared,
            thread: Some(thread),
        })
    }

    /// Takes a reading now and records it as the mark `name`; `None` when the root is gone.
    pub fn mark(&self, name: &str) -> Option<Sample> {
        let sample = self.shared.sample()?;
        let pss_bytes = read_tree_pss(self.shared.root).unwrap_or(0);
        self.shared.series().marks.push(Mark {
            name: name.to_string(),
            sample,
            pss_bytes,
        });
        Some(sample)
    }

    /// Milliseconds since the sampler started.
    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.shared.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A copy of everything recorded so far (the thread keeps sampling).
    pub fn snapshot(&self) -> Series {
        self.shared.series().clone()
    }

    /// Stops the thread and returns everything recorded.
    pub fn finish(mut self) -> Series {
        self.stop_thread();
        std::mem::take(&mut *self.shared.series())
    }

    fn stop_thread(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // A panic of the sampling thread loses no recorded reading: ignore it.
            let _ = thread.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_command_name() {
        let text = "30851 (cat (x) y) R 30848 30848 18605 0 -1 4194304 99 0 0 0 7 3 2 1 20 0 1 0";
        assert_eq!(parse_stat(text), Some((30848, 13)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn vm_rss_is_read_in_kibibytes() {
        let text = "Name:\tcat\nVmPeak:\t 9000 kB\nVmRSS:\t    2020 kB\nThreads: 1\n";
        assert_eq!(parse_vm_rss(text), 2020 * 1024);
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), 0);
        assert_eq!(parse_kb_field("Rss: 10 kB\nPss:  4 kB\n", "Pss:"), 4096);
    }

    #[test]
    fn the_tree_of_this_process_includes_a_child_and_its_memory() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep runs");
        let me = std::process::id();
        let tree = read_tree(me).expect("this process exists");
        assert!(tree.processes >= 2, "this process and sleep: {tree:?}");
        assert!(tree.rss_bytes > 1024 * 1024, "{tree:?}");
        let alone = read_tree(child.id()).expect("sleep exists");
        assert_eq!(alone.processes, 1);
        child.kill().expect("kill sleep");
        child.wait().expect("reap sleep");
        assert_eq!(read_tree(u32::MAX), None);
        let pss = read_tree_pss(me).expect("this process exists");
        assert!(
            pss > 0 && pss <= tree.rss_bytes + alone.rss_bytes + (1 << 20),
            "{pss}"
        );
    }

    #[test]
    fn sampler_records_periodic_readings_and_marks() {
        let sampler = Sampler::start(std::process::id(), Duration::from_millis(5)).expect("start");
        let start = sampler.mark("start").expect("alive");
        std::thread::sleep(Duration::from_millis(60));
        let end = sampler.mark("end").expect("alive");
        let series = sampler.finish();
        assert!(series.samples.len() >= 4, "{}", series.samples.len());
        assert_eq!(series.marks.len(), 2);
        assert!(end.ms >= start.ms + 60);
        assert_eq!(series.mark("end"), Some(&end));
        assert!(series.peak_between(start.ms, end.ms) >= start.rss_bytes.min(end.rss_bytes));
        assert!(series.samples.windows(2).all(|w| w[0].ms <= w[1].ms));
    }
}
