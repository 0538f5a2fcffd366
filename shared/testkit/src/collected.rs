//! An append-only list that producers fill from any thread and tests wait on.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// An append-only, thread-safe list that tests can wait on: a child's output lines, the spans an
/// in-test collector received, the requests a fake downstream saw.
///
/// Waiting wakes on every push instead of polling, and gives up early once the producer has called
/// [`Collected::finish`] (a process that exited will print nothing more).
#[derive(Debug)]
pub struct Collected<T> {
    state: Mutex<State<T>>,
    changed: Notify,
}

#[derive(Debug)]
struct State<T> {
    items: Vec<T>,
    finished: bool,
}

impl<T> Default for Collected<T> {
    fn default() -> Self {
        Self { state: Mutex::new(State { items: Vec::new(), finished: false }), changed: Notify::new() }
    }
}

impl<T: Clone> Collected<T> {
    /// An empty, unfinished list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one item and wakes every waiter.
    pub fn push(&self, item: T) {
        self.lock().items.push(item);
        self.changed.notify_waiters();
    }

    /// Appends several items at once and wakes every waiter.
    pub fn extend(&self, items: impl IntoIterator<Item = T>) {
        self.lock().items.extend(items);
        self.changed.notify_waiters();
    }

    /// Declares that no more items will come, so waits for a missing item end now rather than at
    /// their deadline.
    pub fn finish(&self) {
        self.lock().finished = true;
        self.changed.notify_waiters();
    }

    /// Whether [`Collected::finish`] has been called.
    pub fn is_finished(&self) -> bool {
        self.lock().finished
    }

    /// A copy of everything collected so far, in arrival order.
    pub fn snapshot(&self) -> Vec<T> {
        self.lock().items.clone()
    }

    /// How many items have arrived.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Whether nothing has arrived yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first item collected so far that matches `predicate`, without waiting.
    pub fn find(&self, predicate: impl Fn(&T) -> bool) -> Option<T> {
        self.lock().items.iter().find(|item| predicate(item)).cloned()
    }

    /// Waits until an item matching `predicate` has arrived and returns the first such item.
    ///
    /// `None` when `timeout` passes first, or when the list is finished without a match.
    pub async fn wait_for(&self, predicate: impl Fn(&T) -> bool, timeout: Duration) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut scanned = 0;
        loop {
            // Register interest before looking, so a push between the look and the await still wakes us.
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.lock();
                if let Some(found) = state.items[scanned..].iter().find(|item| predicate(item)) {
                    return Some(found.clone());
                }
                if state.finished {
                    return None;
                }
                scanned = state.items.len();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Waits until at least `len` items were collected or collecting finished; `false` when `timeout` passes first.
    pub async fn wait_for_len(&self, len: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.len() >= len || self.is_finished() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Waits until [`Collected::finish`] has been called; `false` when `timeout` passes first.
    pub async fn wait_until_finished(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_finished() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    // A panic elsewhere while holding the lock cannot leave an append-only list half-written, so a
    // poisoned lock is still safe to use.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn wait_for_sees_items_pushed_after_it_started_waiting() {
        let list = Arc::new(Collected::new());
        let producer = Arc::clone(&list);
        let handle = std::thread::spawn(move || {
            for n in 0..100 {
                producer.push(n);
            }
        });
        let found = list.wait_for(|n| *n == 99, Duration::from_secs(10)).await;
        handle.join().expect("producer thread");
        assert_eq!(found, Some(99));
    }

    #[tokio::test]
    async fn wait_for_times_out_without_a_match() {
        let list = Collected::new();
        list.push(1);
        let started = std::time::Instant::now();
        assert_eq!(list.wait_for(|n| *n == 2, Duration::from_millis(50)).await, None);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_finished_list_ends_the_wait_before_the_deadline() {
        let list = Arc::new(Collected::new());
        let producer = Arc::clone(&list);
        let handle = std::thread::spawn(move || {
            producer.push("last line");
            producer.finish();
        });
        let started = std::time::Instant::now();
        let found = list.wait_for(|line| *line == "never", Duration::from_secs(60)).await;
        handle.join().expect("producer thread");
        assert_eq!(found, None);
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(list.wait_until_finished(Duration::from_secs(1)).await);
        assert_eq!(list.snapshot(), vec!["last line"]);
    }
}
