//! The allocation log behind `imapsim run --check`: every allocation a simulation thread makes on
//! an account, in order, as (account, size); and, against the log of an earlier run, the first
//! allocation that differs, with its backtrace.
//!
//! The log lives in memory taken from the system allocator directly, so that logging changes no
//! account's figures; while a backtrace is taken its allocations are charged to no account and not
//! counted (see [`crate::alloc::diagnostic_mode`]). One simulation per process logs at a time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// One allocation: its account in the top 16 bits, its size (capped) in the low 48.
type Entry = u64;

const SIZE_BITS: u32 = 48;

fn entry(account: u16, size: usize) -> Entry {
    (u64::from(account) << SIZE_BITS) | (size as u64).min((1 << SIZE_BITS) - 1)
}

fn account_of(entry: Entry) -> u16 {
    (entry >> SIZE_BITS) as u16
}

fn size_of(entry: Entry) -> u64 {
    entry & ((1 << SIZE_BITS) - 1)
}

/// A growable array of entries in system memory.
struct Buffer {
    ptr: *mut Entry,
    len: usize,
    cap: usize,
}

// SAFETY: the buffer is only reached through the mutex below.
unsafe impl Send for Buffer {}

impl Buffer {
    const fn new() -> Buffer {
        Buffer {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }

    fn push(&mut self, entry: Entry) {
        if self.len == self.cap {
            let cap = (self.cap * 2).max(1 << 16);
            let layout = |cap: usize| Layout::array::<Entry>(cap).expect("the log fits in memory");
            // SAFETY: a non-zero layout; `ptr` came from System with `layout(self.cap)`.
            let ptr = unsafe {
                if self.ptr.is_null() {
                    System.alloc(layout(cap))
                } else {
                    System.realloc(self.ptr.cast(), layout(self.cap), layout(cap).size())
                }
            };
            if ptr.is_null() {
                return; // Out of memory: the log ends here, the run goes on.
            }
            self.ptr = ptr.cast();
            self.cap = cap;
        }
        // SAFETY: `len < cap` entries are allocated.
        unsafe { self.ptr.add(self.len).write(entry) };
        self.len += 1;
    }

    fn as_slice(&self) -> &[Entry] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: `len` entries were written.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// What the logging thread compares against and what it found.
struct State {
    log: Buffer,
    names: Vec<(u16, String)>,
    reference: Vec<Entry>,
    comparing: bool,
    divergence: Option<Divergence>,
}

static STATE: Mutex<State> = Mutex::new(State {
    log: Buffer::new(),
    names: Vec::new(),
    reference: Vec::new(),
    comparing: false,
    divergence: None,
});

/// Set while some thread logs; the allocator's fast path reads only this.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Set by [`start`] until the next simulation thread [`attach`]es.
static ARMED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static LOGGING: Cell<bool> = const { Cell::new(false) };
}

/// The first allocation of a run that differs from the reference run's.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// Index in the run's whole log.
    pub index: usize,
    /// The account it was charged to.
    pub account: u16,
    /// Its number among that account's allocations (0-based).
    pub account_seq: usize,
    /// Its size.
    pub size: u64,
    /// The reference run's allocation at that index: account and size (None: that run had ended).
    pub reference: Option<(u16, u64)>,
    /// Where it was made, symbolized.
    pub backtrace: String,
}

/// Logs the allocations of the next simulation thread that starts; with `reference` (the log of
/// an earlier run), compares each with it.
pub fn start(reference: Option<Vec<u8>>) {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    state.comparing = reference.is_some();
    state.reference = reference
        .unwrap_or_default()
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("chunks of 8")))
        .collect();
    state.log.len = 0;
    state.names.clear();
    state.divergence = None;
    drop(state);
    ARMED.store(true, Ordering::Release);
}

/// Starts logging this thread's allocations if [`start`] asked for it (a simulation thread calls
/// this before its simulation).
pub(crate) fn attach() {
    if ARMED.swap(false, Ordering::AcqRel) {
        LOGGING.set(true);
        ACTIVE.store(true, Ordering::Release);
    }
}

/// Stops logging this thread's allocations.
pub(crate) fn detach() {
    if LOGGING.replace(false) {
        ACTIVE.store(false, Ordering::Release);
    }
}

/// Whether this thread's allocations are logged now (checked by the allocator).
pub(crate) fn logging() -> bool {
    ACTIVE.load(Ordering::Relaxed) && LOGGING.try_with(Cell::get).unwrap_or(false)
}

/// Notes an account's name while a run is logged (called when an account is made).
pub(crate) fn name_account(id: u16, name: &str) {
    if logging() {
        crate::alloc::diagnostic_mode::run(|| {
            let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
            state.names.push((id, name.to_string()));
        });
    }
}

/// The name of account `id` in the logged run (the last account made with that id).
pub fn account_name(id: u16) -> String {
    let state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    state
        .names
        .iter()
        .rev()
        .find(|(i, _)| *i == id)
        .map_or_else(|| format!("account {id}"), |(_, n)| n.clone())
}

/// Logs one allocation of the current thread (called by the allocator when [`logging`]).
pub(crate) fn record(account: u16, size: usize) {
    let Ok(mut state) = STATE.try_lock() else {
        return; // Only the logging thread takes the lock while the run goes.
    };
    let new = entry(account, size);
    let index = state.log.len;
    state.log.push(new);
    if !state.comparing || state.divergence.is_some() {
        return;
    }
    let reference = state.reference.get(index).copied();
    if reference == Some(new) {
        return;
    }
    let account_seq = state
        .log
        .as_slice()
        .iter()
        .filter(|e| account_of(**e) == account)
        .count()
        - 1;
    // Hold no lock while the backtrace allocates (its allocations are not logged).
    drop(state);
    let backtrace = crate::alloc::diagnostic_mode::run(|| {
        std::backtrace::Backtrace::force_capture().to_string()
    });
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    state.divergence = Some(Divergence {
        index,
        account,
        account_seq,
        size: size_of(new),
        reference: reference.map(|r| (account_of(r), size_of(r))),
        backtrace,
    });
}

/// After the logged run: the log (little-endian entries), the first divergence found and the
/// number of allocations logged.
pub fn finish() -> (Vec<u8>, Option<Divergence>, usize) {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let bytes = state
        .log
        .as_slice()
        .iter()
        .flat_map(|e| e.to_le_bytes())
        .collect();
    let len = state.log.len;
    let divergence = state.divergence.take().or_else(|| {
        // Every allocation matched, but the reference run made more.
        (state.comparing && state.reference.len() > len).then(|| Divergence {
            index: len,
            account: 0,
            account_seq: 0,
            size: 0,
            reference: Some((
                account_of(state.reference[len]),
                size_of(state.reference[len]),
            )),
            backtrace: String::from("(this run made no more allocations)"),
        })
    });
    (bytes, divergence, len)
}
