//! The allocator's diagnostic mode: while diagnostics run (a backtrace, a message), their
//! allocations are charged to no account, not counted among the thread's operations and not
//! logged, so that diagnostics leave the figures as they were. Its own module so that the
//! allocator and the allocation log both use it without using each other.

use std::cell::Cell;

thread_local! {
    /// Set while diagnostics run ([`run`]): their allocations are on no account.
    static IN_DIAGNOSTIC: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is running diagnostics now.
pub(crate) fn active() -> bool {
    IN_DIAGNOSTIC.try_with(Cell::get).unwrap_or(false)
}

/// Runs `f` (a backtrace, a message) with its allocations charged to no account, not counted
/// among the thread's operations and not logged: diagnostics leave the figures as they were.
pub(crate) fn run<R>(f: impl FnOnce() -> R) -> R {
    let was = IN_DIAGNOSTIC.replace(true);
    let result = f();
    IN_DIAGNOSTIC.set(was);
    result
}
