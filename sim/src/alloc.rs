//! The counting global allocator: attributes every heap byte to an account (a simulated host).
//!
//! [`CountingAlloc`] wraps `stats_alloc::StatsAlloc<System>` (whose global counters are the
//! cross-check) and writes the id of the account that allocated each block in a small header in
//! front of it, so that a free is credited to the account that allocated, whichever host is
//! running when the block is freed. The current account is a thread-local, set by
//! [`Account::enter`] or by the `attribution` layer while turmoil ticks a host.
//!
//! A library cannot choose the global allocator of the binaries that use it: every binary (and
//! every integration-test binary) that wants figures must say `sim::simulation_binary!();` once.
//! Without it every figure stays at zero and [`installed`] returns false.
//!
//! Accounts live in a fixed global array; each simulation reserves fresh ids (several simulations
//! run at once in one `cargo test` process) and gives them back when it drops its [`Account`]s.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU16, AtomicU64, AtomicU8, Ordering};

use serde::Serialize;
use stats_alloc::StatsAlloc;

pub(crate) mod diagnostic_mode;

/// How many accounts may exist at once (id 0, "unattributed", included).
pub const ACCOUNTS_MAX: usize = 4096;

/// The smallest header in front of each block; larger alignments get a header of their size.
const HEADER_MIN: usize = 16;

/// The system allocator with global counters (the cross-check).
static INNER: StatsAlloc<System> = StatsAlloc::system();

/// Set by the first allocation that goes through [`CountingAlloc`].
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Per-account counters.
struct Slot {
    live: AtomicU64,
    peak: AtomicU64,
    allocs: AtomicU64,
    alloc_bytes: AtomicU64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            live: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            allocs: AtomicU64::new(0),
            alloc_bytes: AtomicU64::new(0),
        }
    }

    fn charge(&self, bytes: u64) {
        let live = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(live, Ordering::Relaxed);
        self.allocs.fetch_add(1, Ordering::Relaxed);
        self.alloc_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn credit(&self, bytes: u64) {
        self.live.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn clear(&self) {
        self.live.store(0, Ordering::Relaxed);
        self.peak.store(0, Ordering::Relaxed);
        self.allocs.store(0, Ordering::Relaxed);
        self.alloc_bytes.store(0, Ordering::Relaxed);
    }
}

static SLOTS: [Slot; ACCOUNTS_MAX] = [const { Slot::new() }; ACCOUNTS_MAX];

/// Diagnostics: live blocks by exact size (the last class holds every larger block) of one traced
/// account, so that a live-bytes figure can be broken down by what holds it. 0 traces nothing.
static TRACED: AtomicU16 = AtomicU16::new(0);
const SIZE_CLASSES: usize = 16_385;
static LIVE_BY_SIZE: [AtomicI64; SIZE_CLASSES] = [const { AtomicI64::new(0) }; SIZE_CLASSES];
/// Diagnostics: allocations (reallocations included) by exact size of the traced account.
static ALLOCS_BY_SIZE: [AtomicU64; SIZE_CLASSES] = [const { AtomicU64::new(0) }; SIZE_CLASSES];

fn trace(owner: u16, size: usize, delta: i64) {
    if owner != 0 && TRACED.load(Ordering::Relaxed) == owner {
        LIVE_BY_SIZE[size.min(SIZE_CLASSES - 1)].fetch_add(delta, Ordering::Relaxed);
        if delta > 0 {
            ALLOCS_BY_SIZE[size.min(SIZE_CLASSES - 1)].fetch_add(1, Ordering::Relaxed);
            if size == BACKTRACE_SIZE.load(Ordering::Relaxed) {
                print_backtrace(size);
            }
        }
    }
}

/// Diagnostics: allocations of this exact size by the traced account print where they come from.
static BACKTRACE_SIZE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static BACKTRACES_LEFT: AtomicU64 = AtomicU64::new(40);

fn print_backtrace(size: usize) {
    if diagnostic_mode::active() || BACKTRACES_LEFT.load(Ordering::Relaxed) == 0 {
        return;
    }
    BACKTRACES_LEFT.fetch_sub(1, Ordering::Relaxed);
    diagnostic_mode::run(|| {
        let trace = std::backtrace::Backtrace::force_capture();
        eprintln!("allocation of {size} B:\n{trace}");
    });
}

/// Prints where the next few allocations of `size` bytes by the traced account come from.
pub fn backtrace_size(size: usize) {
    BACKTRACES_LEFT.store(40, Ordering::Relaxed);
    BACKTRACE_SIZE.store(size, Ordering::Relaxed);
}

/// Starts counting the live blocks of account `id` by size (blocks allocated before are not seen).
pub fn trace_sizes(id: u16) {
    for class in &LIVE_BY_SIZE {
        class.store(0, Ordering::Relaxed);
    }
    for class in &ALLOCS_BY_SIZE {
        class.store(0, Ordering::Relaxed);
    }
    TRACED.store(id, Ordering::Relaxed);
}

/// Allocations made by the traced account since [`trace_sizes`], as `(size, count)`.
pub fn alloc_sizes() -> Vec<(usize, u64)> {
    nonzero_classes(&ALLOCS_BY_SIZE, |n| n.load(Ordering::Relaxed))
}

/// Diagnostics: the next account made with this name is traced from its creation on.
static TRACE_NEXT_NAMED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Traces ([`trace_sizes`]) the next [`Account`] named `name`, from its creation on.
pub fn trace_next_account_named(name: &str) {
    let mut next = TRACE_NEXT_NAMED.lock().unwrap_or_else(|e| e.into_inner());
    *next = Some(name.to_string());
}

/// Blocks allocated since [`trace_sizes`] and still live, as `(size, count)` with count != 0; the
/// size 16,384 stands for every block of that size or more.
pub fn live_sizes() -> Vec<(usize, i64)> {
    nonzero_classes(&LIVE_BY_SIZE, |n| n.load(Ordering::Relaxed))
}

/// The size classes whose counter reads non-zero, as `(size, count)`.
fn nonzero_classes<A, T: Default + PartialEq>(
    classes: &[A],
    read: impl Fn(&A) -> T,
) -> Vec<(usize, T)> {
    classes
        .iter()
        .enumerate()
        .map(|(size, n)| (size, read(n)))
        .filter(|(_, n)| *n != T::default())
        .collect()
}

/// Slot states: free to reserve, in use by an [`Account`], or retired because blocks it owns were
/// still live when its account was dropped (reusing it would credit those frees to a stranger).
const FREE: u8 = 0;
const USED: u8 = 1;
const RETIRED: u8 = 2;

static STATES: [AtomicU8; ACCOUNTS_MAX] = [const { AtomicU8::new(FREE) }; ACCOUNTS_MAX];

thread_local! {
    /// The account charged for allocations made on this thread (0 = unattributed).
    /// `const`-initialised, no destructor: safe to read from inside the allocator.
    static CURRENT: Cell<u16> = const { Cell::new(0) };
    /// Allocations (reallocations included) made on this thread, whatever their account.
    static THREAD_OPS: Cell<u64> = const { Cell::new(0) };
}

/// The account a new block goes to: the current one, none for diagnostics. Counts the
/// operation on this thread and logs it when `imapsim run --check` asks ([`crate::alloc_log`]).
fn owner_of_new_block(size: usize) -> u16 {
    if diagnostic_mode::active() {
        return 0;
    }
    let owner = current();
    // try_with: a thread's last frees and allocations may run while its locals are torn down.
    let _ = THREAD_OPS.try_with(|n| n.set(n.get() + 1));
    if crate::alloc_log::logging() {
        crate::alloc_log::record(owner, size);
    }
    owner
}

/// Allocations (reallocations included) made on this thread so far: a simulation's own count,
/// which no other thread's allocations change.
pub fn thread_alloc_ops() -> u64 {
    THREAD_OPS.with(Cell::get)
}

fn current() -> u16 {
    CURRENT.with(Cell::get)
}

/// Sets the current account of this thread and returns the previous one.
pub(crate) fn set_current(id: u16) -> u16 {
    CURRENT.with(|c| c.replace(id))
}

fn header_bytes(layout: &Layout) -> usize {
    layout.align().max(HEADER_MIN)
}

/// The layout of the block as the system allocator sees it: header + user bytes.
fn outer_layout(layout: &Layout) -> Option<Layout> {
    let header = header_bytes(layout);
    let size = layout.size().checked_add(header)?;
    Layout::from_size_align(size, header).ok()
}

/// The global allocator. Declare it with [`simulation_binary!`](crate::simulation_binary).
pub struct CountingAlloc;

impl CountingAlloc {
    /// Writes the owner's id in the header and charges the account; `base` is the outer block.
    unsafe fn finish(base: *mut u8, layout: &Layout) -> *mut u8 {
        if base.is_null() {
            return base;
        }
        let user = base.add(header_bytes(layout));
        let owner = owner_of_new_block(layout.size());
        // SAFETY: the header is at least 16 bytes and `user` is at least 16-aligned, so the two
        // bytes before `user` are inside the block and aligned for a u16.
        (user.sub(2) as *mut u16).write(owner);
        SLOTS[owner as usize].charge(layout.size() as u64);
        trace(owner, layout.size(), 1);
        user
    }
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        INSTALLED.store(true, Ordering::Relaxed);
        let Some(outer) = outer_layout(&layout) else {
            return std::ptr::null_mut();
        };
        Self::finish(INNER.alloc(outer), &layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        INSTALLED.store(true, Ordering::Relaxed);
        let Some(outer) = outer_layout(&layout) else {
            return std::ptr::null_mut();
        };
        Self::finish(INNER.alloc_zeroed(outer), &layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let header = header_bytes(&layout);
        // SAFETY: `ptr` came from `alloc` with this layout, which wrote the owner before it.
        let owner = (ptr.sub(2) as *const u16).read();
        SLOTS[owner as usize].credit(layout.size() as u64);
        trace(owner, layout.size(), -1);
        let outer = outer_layout(&layout).expect("this layout was accepted when allocating");
        INNER.dealloc(ptr.sub(header), outer);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let header = header_bytes(&layout);
        let Some(new_outer_size) = new_size.checked_add(header) else {
            return std::ptr::null_mut();
        };
        if Layout::from_size_align(new_outer_size, header).is_err() {
            return std::ptr::null_mut();
        }
        let outer = outer_layout(&layout).expect("this layout was accepted when allocating");
        let base = INNER.realloc(ptr.sub(header), outer, new_outer_size);
        if base.is_null() {
            return base;
        }
        let user = base.add(header);
        // The header moved with the block: the old size goes back to its owner, the new size is
        // charged to the current account, which becomes the owner.
        let owner = (user.sub(2) as *const u16).read();
        SLOTS[owner as usize].credit(layout.size() as u64);
        trace(owner, layout.size(), -1);
        let now = owner_of_new_block(new_size);
        (user.sub(2) as *mut u16).write(now);
        SLOTS[now as usize].charge(new_size as u64);
        trace(now, new_size, 1);
        user
    }
}

/// Whether [`CountingAlloc`] is this process's global allocator (it has seen an allocation).
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// One account's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Bytes allocated by this account and not freed yet.
    pub live_bytes: u64,
    /// Highest `live_bytes` since the account was made or its peak last reset.
    pub peak_bytes: u64,
    /// Allocations (a reallocation counts as one).
    pub allocs: u64,
    /// Bytes requested by those allocations (a reallocation counts its new size).
    pub alloc_bytes: u64,
}

impl Figures {
    /// Adds two accounts' figures (peaks add: an upper bound of the joint peak).
    pub fn sum(self, other: Figures) -> Figures {
        Figures {
            live_bytes: self.live_bytes + other.live_bytes,
            peak_bytes: self.peak_bytes + other.peak_bytes,
            allocs: self.allocs + other.allocs,
            alloc_bytes: self.alloc_bytes + other.alloc_bytes,
        }
    }
}

/// Errors from the account table.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    /// Every account id is in use or retired.
    #[error("all {ACCOUNTS_MAX} allocation accounts are in use")]
    Exhausted,
}

/// An allocation account: a simulated host, the harness, or anything else worth measuring.
/// Dropping it gives its id back (or retires the id if blocks it owns are still live).
#[derive(Debug)]
pub struct Account {
    id: u16,
    name: String,
}

impl Account {
    /// Reserves a fresh account with zeroed figures.
    pub fn new(name: impl Into<String>) -> Result<Account, AccountError> {
        for id in 1..ACCOUNTS_MAX {
            if STATES[id]
                .compare_exchange(FREE, USED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                SLOTS[id].clear();
                let id = u16::try_from(id).expect("ACCOUNTS_MAX fits in a u16");
                let name = name.into();
                crate::alloc_log::name_account(id, &name);
                {
                    let mut next = TRACE_NEXT_NAMED.lock().unwrap_or_else(|e| e.into_inner());
                    if next.as_deref() == Some(name.as_str()) {
                        *next = None;
                        trace_sizes(id);
                    }
                }
                return Ok(Account { id, name });
            }
        }
        Err(AccountError::Exhausted)
    }

    /// The account's id (what the block headers hold).
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The account's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Charges this thread's allocations to this account until the guard is dropped.
    pub fn enter(&self) -> EnterGuard {
        enter_id(self.id)
    }

    /// The account's figures now.
    pub fn figures(&self) -> Figures {
        figures_of(self.id)
    }

    /// Starts a new phase: the peak becomes the current live bytes.
    pub fn reset_peak(&self) {
        reset_peak(self.id);
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let slot = &SLOTS[self.id as usize];
        let next = if slot.live.load(Ordering::Relaxed) == 0 {
            FREE
        } else {
            RETIRED
        };
        STATES[self.id as usize].store(next, Ordering::Release);
    }
}

/// Charges this thread's allocations to account `id` until the guard is dropped.
pub fn enter_id(id: u16) -> EnterGuard {
    EnterGuard {
        previous: set_current(id),
    }
}

/// Restores the previous current account when dropped.
#[must_use = "the account is only current while the guard lives"]
pub struct EnterGuard {
    previous: u16,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        set_current(self.previous);
    }
}

/// The figures of account `id` (0 = unattributed).
pub fn figures_of(id: u16) -> Figures {
    let slot = &SLOTS[id as usize];
    Figures {
        live_bytes: slot.live.load(Ordering::Relaxed),
        peak_bytes: slot.peak.load(Ordering::Relaxed),
        allocs: slot.allocs.load(Ordering::Relaxed),
        alloc_bytes: slot.alloc_bytes.load(Ordering::Relaxed),
    }
}

/// Sets account `id`'s peak to its live bytes (the start of a phase).
pub fn reset_peak(id: u16) {
    let slot = &SLOTS[id as usize];
    slot.peak
        .store(slot.live.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// The account charged for this thread's allocations right now.
pub fn current_account_id() -> u16 {
    current()
}

/// Process-wide counters from `stats_alloc` (headers included): the cross-check.
pub fn global_stats() -> stats_alloc::Stats {
    INNER.stats()
}

/// Allocation operations (allocations + reallocations) seen by `stats_alloc` so far.
pub fn global_alloc_ops() -> u64 {
    let stats = INNER.stats();
    (stats.allocations + stats.reallocations) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_is_charged_to_the_entered_account_and_credited_back_on_free() {
        let account = Account::new("test").expect("accounts available");
        let block = {
            let _guard = account.enter();
            vec![7u8; 10_000]
        };
        let during = account.figures();
        assert!(during.live_bytes >= 10_000, "{during:?}");
        assert!(during.allocs >= 1);
        drop(block); // freed outside the account: still credited to it
        let after = account.figures();
        assert_eq!(after.live_bytes, during.live_bytes - 10_000);
        assert!(after.peak_bytes >= 10_000);
        account.reset_peak();
        assert_eq!(account.figures().peak_bytes, account.figures().live_bytes);
    }

    #[test]
    fn realloc_moves_ownership_to_the_current_account() {
        let first = Account::new("first").expect("accounts available");
        let second = Account::new("second").expect("accounts available");
        let mut v: Vec<u8> = {
            let _guard = first.enter();
            Vec::with_capacity(100)
        };
        {
            let _guard = second.enter();
            v.reserve_exact(5_000);
        }
        assert_eq!(first.figures().live_bytes, 0);
        assert!(second.figures().live_bytes >= 5_000);
        drop(v);
        assert_eq!(second.figures().live_bytes, 0);
    }

    #[test]
    fn large_alignments_keep_their_alignment() {
        #[repr(align(4096))]
        struct Page(#[allow(dead_code)] [u8; 4096]);
        let account = Account::new("aligned").expect("accounts available");
        let _guard = account.enter();
        let page = std::hint::black_box(Box::new(Page([1; 4096])));
        assert_eq!((&*page as *const Page as usize) % 4096, 0);
        assert_eq!(account.figures().live_bytes, 4096);
        drop(page);
        assert_eq!(account.figures().live_bytes, 0);
    }

    #[test]
    fn the_next_account_of_a_name_has_its_allocations_counted_by_size() {
        trace_next_account_named("traced by name");
        let account = Account::new("traced by name").expect("accounts available");
        {
            let _guard = account.enter();
            drop(std::hint::black_box(vec![0u8; 12_345]));
        }
        assert!(alloc_sizes().contains(&(12_345, 1)), "{:?}", alloc_sizes());
        assert!(!live_sizes().iter().any(|&(size, _)| size == 12_345));
    }

    #[test]
    fn dropped_accounts_are_reused_only_when_empty() {
        let leaked_id = {
            let account = Account::new("leaky").expect("accounts available");
            let _guard = account.enter();
            // black_box: an allocation nothing reads may be optimised away.
            std::mem::forget(std::hint::black_box(vec![0u8; 64]));
            account.id()
        };
        assert_eq!(STATES[leaked_id as usize].load(Ordering::Relaxed), RETIRED);
        let clean_id = {
            let account = Account::new("clean").expect("accounts available");
            account.id()
        };
        assert_eq!(STATES[clean_id as usize].load(Ordering::Relaxed), FREE);
    }
}
