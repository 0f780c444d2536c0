//! Entropy and wall clock as functions of the seed on simulation threads, the OS's everywhere else.
//!
//! std's `RandomState` (every `HashMap`, turmoil's `IndexMap`s) draws its per-thread keys once from
//! libc's `getrandom`, which std and getrandom 0.3 find by name at run time. A binary that says
//! [`simulation_binary!`](crate::simulation_binary) defines `getrandom`, `getentropy` and
//! `clock_gettime` itself; they come here. On a thread that [`enter`]ed a seed (one per simulation,
//! see [`spawn`]) random bytes are a splitmix64 stream of that seed and the wall clock
//! (`CLOCK_REALTIME`) stands still at the simulation's epoch (hyper, for one, reads it on every
//! poll of a connection, and turmoil's builder for its default epoch); on every other thread
//! (`imapsim serve`, the harness's own threads) the calls go to the kernel and to libc unchanged.
//! The monotonic clock is passed through: tokio's paused clock under turmoil only takes its base
//! from it, and every duration a simulation sees is simulated.
//!
//! Why not the `mad-turmoil` crate, which ships such shims: its RNG is one per process, set once
//! (`OnceLock`), and it replaces randomness on every thread. Here many simulations run in one
//! process (`cargo test`, `report`), each from its own seed, and the serving binary's keys must
//! stay the OS's.
//!
//! tokio seeds each runtime's RNG (`select!` picks, the order of woken waiters) from a process-wide
//! counter unless built with `--cfg tokio_unstable`; under it turmoil seeds every host's runtime
//! from the simulation's seed. `.cargo/config.toml` sets the cfg; [`enter`] refuses without it.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The simulation's wall-clock epoch, 2024-02-15T00:00:00Z: what a simulation thread's
/// `CLOCK_REALTIME` reads, and the start of turmoil's clock (the harness sets it).
pub const EPOCH_UNIX_S: u64 = 1_707_955_200;

/// The simulation's epoch as a `SystemTime`.
pub fn epoch() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(EPOCH_UNIX_S)
}

/// Mixed into the root seed so that the key stream is not the seed's other derived streams.
const STREAM_DOMAIN: u64 = 0x7f4a_7c15_9e37_79b9;

thread_local! {
    /// The splitmix64 state of this thread's stream; meaningful while `SEEDED` is set.
    static STATE: Cell<u64> = const { Cell::new(0) };
    /// Whether this thread is a simulation thread (or the interception probe).
    static SEEDED: Cell<bool> = const { Cell::new(false) };
    /// Calls of the shims' random functions on this thread.
    static DRAWS: Cell<u64> = const { Cell::new(0) };
}

/// Why a thread cannot run a simulation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntropyError {
    /// The binary does not define the shims, or the libc or std in use does not reach them.
    #[error(
        "entropy interception is not in effect: std's hash keys do not come from imapsim's \
         getrandom (a binary without `sim::simulation_binary!();`, a static or musl build, or a \
         std that no longer calls libc's getrandom), so figures would not repeat"
    )]
    NotIntercepted,
    /// std had drawn this thread's hash keys before the seed was set.
    #[error(
        "this thread drew its hash keys before the simulation's seed was set: run each simulation \
         on a fresh thread (sim::entropy::spawn, or Scenario::run)"
    )]
    NotFresh,
    /// A simulation was built on a thread that did not enter a seed.
    #[error(
        "a simulation runs only on a simulation thread: start it with Scenario::run or \
         sim::entropy::spawn"
    )]
    NotASimulationThread,
    /// The thread already runs a simulation's entropy.
    #[error("this thread already entered a simulation seed")]
    AlreadyEntered,
    /// Built without `--cfg tokio_unstable`, tokio's RNG is seeded from a process-wide counter.
    #[error(
        "built without `--cfg tokio_unstable` (set in .cargo/config.toml; a RUSTFLAGS variable \
         replaces it): tokio's RNG would not follow the seed"
    )]
    TokioUnstable,
    /// The operating system refused a thread.
    #[error("cannot start a simulation thread: {0}")]
    Spawn(String),
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` from this thread's stream.
fn fill_seeded(buf: &mut [u8]) {
    let mut state = STATE.get();
    for chunk in buf.chunks_mut(8) {
        let word = splitmix64(&mut state).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    STATE.set(state);
    DRAWS.set(DRAWS.get() + 1);
}

fn seeded() -> bool {
    SEEDED.try_with(Cell::get).unwrap_or(false)
}

/// libc's `getrandom(2)`: the seed's stream on a simulation thread, the kernel's otherwise.
///
/// # Safety
/// `buf` must be valid for `len` bytes of writes (the libc contract).
pub unsafe fn getrandom(buf: *mut u8, len: usize, flags: u32) -> isize {
    if seeded() {
        // SAFETY: the caller gives a buffer of `len` writable bytes.
        fill_seeded(unsafe { std::slice::from_raw_parts_mut(buf, len) });
        return len as isize;
    }
    // Not by name: this function is `getrandom` in the binary, calling it would recurse.
    // SAFETY: forwards the caller's valid buffer to the kernel.
    unsafe { libc::syscall(libc::SYS_getrandom, buf, len, flags) as isize }
}

/// libc's `getentropy(3)`: at most 256 bytes, 0 or -1.
///
/// # Safety
/// `buf` must be valid for `len` bytes of writes.
pub unsafe fn getentropy(buf: *mut u8, len: usize) -> i32 {
    if len > 256 {
        // SAFETY: writing errno, a thread-local of libc's.
        unsafe { *libc::__errno_location() = libc::EIO };
        return -1;
    }
    let mut done = 0;
    while done < len {
        // SAFETY: `buf + done` has `len - done` writable bytes.
        let n = unsafe { getrandom(buf.add(done), len - done, 0) };
        if n < 0 {
            // SAFETY: reading errno.
            if unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            return -1;
        }
        done += n as usize;
    }
    0
}

type ClockGettime = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int;

/// libc's own `clock_gettime` (the vDSO one), found once.
static LIBC_CLOCK_GETTIME: AtomicUsize = AtomicUsize::new(0);

fn libc_clock_gettime() -> Option<ClockGettime> {
    let mut f = LIBC_CLOCK_GETTIME.load(Ordering::Relaxed);
    if f == 0 {
        // SAFETY: dlsym with a NUL-terminated name; RTLD_NEXT skips this binary's definition.
        f = unsafe { libc::dlsym(libc::RTLD_NEXT, c"clock_gettime".as_ptr()) } as usize;
        LIBC_CLOCK_GETTIME.store(f, Ordering::Relaxed);
    }
    // SAFETY: a non-null result of dlsym("clock_gettime") is libc's function of that type.
    (f != 0).then(|| unsafe { std::mem::transmute::<usize, ClockGettime>(f) })
}

/// libc's `clock_gettime(2)`: on a simulation thread the wall clock reads the epoch; everything
/// else is libc's.
///
/// # Safety
/// `tp` must be valid for a write of a `timespec`.
pub unsafe fn clock_gettime(clock: libc::clockid_t, tp: *mut libc::timespec) -> libc::c_int {
    let wall = matches!(
        clock,
        libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE | libc::CLOCK_TAI
    );
    if wall && seeded() {
        // SAFETY: the caller gives a writable timespec.
        unsafe {
            (*tp).tv_sec = EPOCH_UNIX_S as libc::time_t;
            (*tp).tv_nsec = 0;
        }
        return 0;
    }
    match libc_clock_gettime() {
        // SAFETY: libc's function with the caller's arguments.
        Some(f) => unsafe { f(clock, tp) },
        // SAFETY: the raw system call with the caller's arguments.
        None => unsafe { libc::syscall(libc::SYS_clock_gettime, clock, tp) as libc::c_int },
    }
}

/// Whether the shims are what std reaches: checked once per process on a probe thread.
pub fn intercepted() -> bool {
    static PROBE: OnceLock<bool> = OnceLock::new();
    *PROBE.get_or_init(|| {
        std::thread::spawn(|| {
            SEEDED.set(true);
            let _ = std::collections::hash_map::RandomState::new();
            DRAWS.get() > 0
        })
        .join()
        .unwrap_or(false)
    })
}

/// Makes this thread a simulation thread whose entropy is a function of `seed`, and draws std's
/// hash keys from it now; refuses when that cannot hold.
pub fn enter(seed: u64) -> Result<(), EntropyError> {
    if !cfg!(tokio_unstable) {
        return Err(EntropyError::TokioUnstable);
    }
    if seeded() {
        return Err(EntropyError::AlreadyEntered);
    }
    let mut state = seed ^ STREAM_DOMAIN;
    STATE.set(splitmix64(&mut state));
    SEEDED.set(true);
    let draws = DRAWS.get();
    let _ = std::collections::hash_map::RandomState::new();
    if DRAWS.get() == draws {
        SEEDED.set(false);
        return Err(if intercepted() {
            EntropyError::NotFresh
        } else {
            EntropyError::NotIntercepted
        });
    }
    Ok(())
}

/// Fails unless this thread entered a seed; the error says what a fresh thread would lack, if
/// anything (the cfg, the interception), else how to start a simulation thread.
pub fn check_simulation_thread() -> Result<(), EntropyError> {
    if seeded() {
        Ok(())
    } else if !cfg!(tokio_unstable) {
        Err(EntropyError::TokioUnstable)
    } else if !intercepted() {
        Err(EntropyError::NotIntercepted)
    } else {
        Err(EntropyError::NotASimulationThread)
    }
}

/// Stack of a simulation thread: a turmoil host's futures are polled on it.
pub const STACK_BYTES: usize = 64 * 1024 * 1024;

/// Runs `run` on a fresh thread (named `name`, with a simulation's stack) that first [`enter`]s
/// `seed`.
pub fn spawn<T, E, F>(name: String, seed: u64, run: F) -> std::thread::JoinHandle<Result<T, E>>
where
    T: Send + 'static,
    E: From<EntropyError> + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    let spawned = std::thread::Builder::new()
        .name(name)
        .stack_size(STACK_BYTES)
        .spawn(move || {
            enter(seed)?;
            run()
        });
    spawned.unwrap_or_else(|e| {
        // The error has to reach the caller through the same handle type.
        let message = e.to_string();
        std::thread::spawn(move || Err(EntropyError::Spawn(message).into()))
    })
}

/// [`spawn`], then waits for the thread; a panic of `run` is resumed on the caller's thread.
pub fn run<T, E, F>(seed: u64, run: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<EntropyError> + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    match spawn(format!("simulation seed {seed}"), seed, run).join() {
        Ok(result) => result,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Declares what a binary that runs simulations needs, once per binary (a library cannot): the
/// counting global allocator ([`crate::alloc`]) and the `getrandom`, `getentropy` and
/// `clock_gettime` symbols of this module.
#[macro_export]
macro_rules! simulation_binary {
    () => {
        #[global_allocator]
        static IMAPSIM_COUNTING_ALLOC: $crate::alloc::CountingAlloc = $crate::alloc::CountingAlloc;

        /// libc's getrandom, seeded on simulation threads (sim::entropy).
        ///
        /// # Safety
        /// libc's contract.
        #[no_mangle]
        pub unsafe extern "C" fn getrandom(buf: *mut u8, len: usize, flags: u32) -> isize {
            // SAFETY: the caller's contract is the same.
            unsafe { $crate::entropy::getrandom(buf, len, flags) }
        }

        /// libc's getentropy, seeded on simulation threads (sim::entropy).
        ///
        /// # Safety
        /// libc's contract.
        #[no_mangle]
        pub unsafe extern "C" fn getentropy(buf: *mut u8, len: usize) -> i32 {
            // SAFETY: the caller's contract is the same.
            unsafe { $crate::entropy::getentropy(buf, len) }
        }

        /// libc's clock_gettime, the epoch for the wall clock on simulation threads (sim::entropy).
        ///
        /// # Safety
        /// libc's contract.
        #[no_mangle]
        pub unsafe extern "C" fn clock_gettime(
            clock: $crate::entropy::ClockId,
            tp: *mut $crate::entropy::Timespec,
        ) -> i32 {
            // SAFETY: the caller's contract is the same.
            unsafe { $crate::entropy::clock_gettime(clock, tp) }
        }
    };
}

/// `clockid_t`, for [`simulation_binary!`](crate::simulation_binary)'s signature.
pub type ClockId = libc::clockid_t;
/// `struct timespec`, for [`simulation_binary!`](crate::simulation_binary)'s signature.
pub type Timespec = libc::timespec;

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_of_a_fresh_thread(seed: Option<u64>) -> u64 {
        std::thread::spawn(move || {
            if let Some(seed) = seed {
                enter(seed).expect("a fresh thread enters its seed");
            }
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(42u64)
        })
        .join()
        .expect("the probe thread completes")
    }

    #[test]
    fn a_simulation_thread_hashes_as_its_seed_says() {
        assert!(
            intercepted(),
            "the sim crate's test binary defines the shims"
        );
        assert_eq!(
            keys_of_a_fresh_thread(Some(7)),
            keys_of_a_fresh_thread(Some(7))
        );
        assert_ne!(
            keys_of_a_fresh_thread(Some(7)),
            keys_of_a_fresh_thread(Some(8))
        );
    }

    #[test]
    fn other_threads_keep_the_operating_systems_entropy() {
        assert_ne!(keys_of_a_fresh_thread(None), keys_of_a_fresh_thread(None));
        let draw = || {
            let mut buf = [0u8; 32];
            // SAFETY: a 32-byte buffer.
            let n = unsafe { getrandom(buf.as_mut_ptr(), buf.len(), 0) };
            assert_eq!(n, 32);
            buf
        };
        assert_ne!(draw(), draw());
    }

    #[test]
    fn a_simulation_outside_a_simulation_thread_is_refused() {
        let result = std::thread::spawn(check_simulation_thread)
            .join()
            .expect("the thread completes");
        assert_eq!(result, Err(EntropyError::NotASimulationThread));
        assert_eq!(
            run(1, || Ok::<_, EntropyError>(check_simulation_thread())),
            Ok(Ok(()))
        );
    }

    #[test]
    fn a_thread_that_hashed_before_cannot_enter() {
        let result = std::thread::spawn(|| {
            let _ = std::collections::hash_map::RandomState::new();
            enter(1)
        })
        .join()
        .expect("the thread completes");
        assert_eq!(result, Err(EntropyError::NotFresh));
    }

    #[test]
    fn the_wall_clock_of_a_simulation_thread_stands_at_the_epoch() {
        let now = run(3, || Ok::<_, EntropyError>(std::time::SystemTime::now()))
            .expect("a fresh thread enters");
        assert_eq!(now, epoch());
        assert!(std::time::SystemTime::now() > epoch());
    }
}
