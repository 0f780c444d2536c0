//! What a workload needs of the world it runs in, and the phases its parties go through together.
//!
//! A workload is one async function over a [`Driver`]: the simulation implements it on turmoil
//! (phase ends record the server host's heap figures), the real-TCP benchmark on tokio sockets
//! (phase ends take an RSS reading). A workload's parties are local tasks of one thread.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::rc::Rc;

use tokio::io::{AsyncRead, AsyncWrite};

/// Requests the store served so far, where the driver can see the store (the simulation's fake).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreRequests {
    /// S3 GetObject.
    pub get_object: u64,
    /// S3 PutObject.
    pub put_object: u64,
    /// S3 CopyObject.
    pub copy_object: u64,
}

impl StoreRequests {
    /// Body requests of any kind between `self` (before) and `after`.
    pub fn body_requests_until(&self, after: StoreRequests) -> u64 {
        (after.get_object - self.get_object)
            + (after.put_object - self.put_object)
            + (after.copy_object - self.copy_object)
    }
}

/// The world a workload runs in.
pub trait Driver: 'static {
    /// A connection to the server.
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;

    /// Connects to the server's IMAP port.
    fn dial_imap(&self) -> impl Future<Output = io::Result<Self::Stream>>;

    /// Connects to the server's LMTP port; `None` when the server was given none (new mail then
    /// arrives by APPEND).
    fn dial_lmtp(&self) -> Option<impl Future<Output = io::Result<Self::Stream>>>;

    /// Called once at each phase boundary, by the last party to reach it, before any goes on.
    fn phase_ended(&self, name: &'static str);

    /// The store's request counters, if the driver sees the store.
    fn store_requests(&self) -> Option<StoreRequests> {
        None
    }

    /// Whether the users' mailboxes are known to be empty (a fresh simulated store); when not,
    /// workloads empty or check them first.
    fn store_is_fresh(&self) -> bool;

    /// Seed of the dataset emails.
    fn dataset_seed(&self) -> u64;
}

/// A barrier for the parties of one workload (one thread) that releases its waiters in the order
/// they arrived, so that their next commands leave in an order the seed fixes.
///
/// Not `tokio::sync::Barrier`: it is built on `tokio::sync::watch`, whose receivers each wait on
/// one of 8 `Notify`s picked with tokio's thread RNG. Parties released by it resumed in a random
/// order from run to run: same bytes on the wire, but e.g. the server's watch map split its
/// B-tree nodes differently, one 280 B allocation more or less.
struct Barrier {
    parties: usize,
    arrived: Cell<usize>,
    generation: Cell<u64>,
    released: tokio::sync::Notify,
}

impl Barrier {
    fn new(parties: usize) -> Barrier {
        Barrier {
            parties: parties.max(1),
            arrived: Cell::new(0),
            generation: Cell::new(0),
            released: tokio::sync::Notify::new(),
        }
    }

    /// Waits until `parties` tasks have called it; true for the last one, which returns at once.
    /// `Notify::notify_waiters` wakes its waiters first come, first woken.
    async fn wait(&self) -> bool {
        let generation = self.generation.get();
        let arrived = self.arrived.get() + 1;
        if arrived >= self.parties {
            self.arrived.set(0);
            self.generation.set(generation.wrapping_add(1));
            self.released.notify_waiters();
            return true;
        }
        self.arrived.set(arrived);
        let released = self.released.notified();
        tokio::pin!(released);
        // Registered now, so that this waiter's place in the wake order is its arrival.
        released.as_mut().enable();
        while self.generation.get() == generation {
            released.as_mut().await;
            released.set(self.released.notified());
            released.as_mut().enable();
        }
        false
    }
}

/// The phases of one workload run: every party waits at each boundary, and the last one to
/// arrive tells the driver.
#[derive(Clone)]
pub struct Phases {
    names: &'static [&'static str],
    barrier: Rc<Barrier>,
    ended: Rc<dyn Fn(&'static str)>,
}

impl Phases {
    /// Phases `names` for `parties` parties, each boundary reported to `driver`.
    pub fn new<D: Driver>(
        driver: &Rc<D>,
        parties: usize,
        names: &'static [&'static str],
    ) -> Phases {
        let driver = driver.clone();
        Phases {
            names,
            barrier: Rc::new(Barrier::new(parties)),
            ended: Rc::new(move |name| driver.phase_ended(name)),
        }
    }

    /// One party's way through the phases.
    pub fn cursor(&self) -> PhaseCursor {
        PhaseCursor {
            phases: self.clone(),
            next: 0,
        }
    }
}

/// A party's position in the phases.
pub struct PhaseCursor {
    phases: Phases,
    next: usize,
}

impl PhaseCursor {
    /// Ends the current phase (waits for every party to end it).
    pub async fn end_phase(&mut self) {
        if let Some(&name) = self.phases.names.get(self.next) {
            if self.phases.barrier.wait().await {
                (self.phases.ended)(name);
            }
            self.next += 1;
        }
    }

    /// Passes every remaining boundary (a party that stopped early must not block the others).
    pub async fn end_all(&mut self) {
        while self.next < self.phases.names.len() {
            self.end_phase().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Per round: the tasks in the order they arrived, and in the order they were released.
    type Rounds = Vec<(Vec<usize>, Vec<(usize, bool)>)>;

    #[test]
    fn the_barrier_releases_waiters_in_arrival_order_after_the_last_one_leads() {
        const TASKS: usize = 4;
        const ROUNDS: usize = 3;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime builds");
        let local = tokio::task::LocalSet::new();
        let barrier = Rc::new(Barrier::new(TASKS));
        let rounds: Rc<RefCell<Rounds>> =
            Rc::new(RefCell::new(vec![(Vec::new(), Vec::new()); ROUNDS]));
        local.block_on(&rt, async {
            let mut tasks = Vec::new();
            for i in 0..TASKS {
                let (barrier, rounds) = (barrier.clone(), rounds.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    for round in 0..ROUNDS {
                        rounds.borrow_mut()[round].0.push(i);
                        let leader = barrier.wait().await;
                        rounds.borrow_mut()[round].1.push((i, leader));
                    }
                }));
            }
            for task in tasks {
                task.await.expect("the task completes");
            }
        });
        for (arrived, released) in rounds.borrow().iter() {
            assert_eq!(arrived.len(), TASKS);
            let last = *arrived.last().expect("tasks arrived");
            let mut expected = vec![(last, true)];
            expected.extend(arrived[..TASKS - 1].iter().map(|&i| (i, false)));
            assert_eq!(released, &expected, "arrived in order {arrived:?}");
        }
    }
}
