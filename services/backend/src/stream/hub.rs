//! The hub between the feed and the open streams: a bounded log of recent changes (for resuming) and, per user,
//! the streams waiting for that user's next change.
//!
//! One lock guards both, so a stream that resumes gets every change after its `Last-Event-ID` exactly once: the
//! replay is cut from the log and the stream starts listening in the same critical section, with no change able
//! to fall between the two.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use opentelemetry::trace::SpanContext;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::domain::OwnerId;
use crate::metrics::{self, StreamDisconnect, StreamRefusal};

/// How many changes a stream may have waiting to be written before it counts as too slow and is closed (the
/// client reconnects with `Last-Event-ID` and resumes from the log).
const CLIENT_BUFFER: usize = 256;

/// One change as streams send it, prepared once for every stream that sends it.
#[derive(Debug)]
pub struct StreamEvent {
    /// The CloudEvent id: the SSE `id`, and what `Last-Event-ID` names to resume after it.
    pub id: Uuid,
    /// Whose task changed; only that user's streams get it.
    pub owner: OwnerId,
    /// When the change was made (the CloudEvent `time`): stream lag is measured from it.
    pub time: DateTime<Utc>,
    /// The SSE `data`: the change as JSON (`TaskChangeMessage`).
    pub data: String,
    /// The span that produced the change (from the Kafka headers), for the send span's link.
    pub producer: Option<SpanContext>,
}

/// The limits and the resume window of the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubLimits {
    /// How long a change stays in the log for resuming.
    pub resume_window: Duration,
    /// The most changes the log holds; the oldest go first when it is full (which shortens the window).
    pub resume_events: usize,
    /// How long a resume waits for a `Last-Event-ID` this replica has not read yet (it may be behind another).
    pub resume_wait: Duration,
    /// Open streams one user may have at once.
    pub max_per_user: usize,
    /// Open streams this replica serves at once.
    pub max_total: usize,
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The user has `limit` streams open already.
    #[error("this user already has {limit} open task streams")]
    UserLimit {
        /// The per-user limit.
        limit: usize,
    },
    /// This replica serves `limit` streams already.
    #[error("this server already serves {limit} task streams")]
    TotalLimit {
        /// The per-replica limit.
        limit: usize,
    },
    /// `Last-Event-ID` names no change of this user within the resume window.
    #[error("event {id} is not within the resume window")]
    Gone {
        /// The id asked for.
        id: Uuid,
    },
    /// A resume came before the feed has started reading (the broker was not reachable yet): what this replica
    /// will have logged is not known.
    #[error("the stream's feed has not started yet")]
    Starting,
    /// The service is shutting down.
    #[error("the service is shutting down")]
    Closed,
}

impl Refused {
    fn metric(self) -> StreamRefusal {
        match self {
            Refused::UserLimit { .. } => StreamRefusal::UserLimit,
            Refused::TotalLimit { .. } => StreamRefusal::TotalLimit,
            Refused::Gone { .. } => StreamRefusal::ResumeGone,
            Refused::Starting => StreamRefusal::FeedStarting,
            Refused::Closed => StreamRefusal::ShuttingDown,
        }
    }
}

/// An open stream: the changes to replay, then the live ones. Dropping it closes the stream and counts the
/// disconnect with its reason.
#[derive(Debug)]
pub struct Subscription {
    /// Changes after `Last-Event-ID`, oldest first; empty for a stream that starts live.
    pub replay: Vec<Arc<StreamEvent>>,
    /// Changes from now on; ends when the hub closes the stream (shutdown, or a client too slow to keep up).
    pub live: mpsc::Receiver<Arc<StreamEvent>>,
    /// Unregisters the stream when dropped.
    pub registration: Registration,
}

/// A stream's place in the hub; dropping it removes the stream and counts why it ended.
#[derive(Debug)]
pub struct Registration {
    hub: Arc<Hub>,
    owner: OwnerId,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut state = self.hub.lock();
        let reason = state.ended.remove(&self.id).unwrap_or(StreamDisconnect::ClientClosed);
        if let Some(streams) = state.streams.get_mut(&self.owner) {
            streams.retain(|stream| stream.id != self.id);
            if streams.is_empty() {
                state.streams.remove(&self.owner);
            }
        }
        state.open -= 1;
        metrics::stream_closed(state.open, reason);
    }
}

/// One logged change, with the arrival order the replay follows.
#[derive(Debug)]
struct Logged {
    sequence: u64,
    arrived: Instant,
    event: Arc<StreamEvent>,
}

/// A stream waiting for its user's changes.
#[derive(Debug)]
struct Listener {
    id: u64,
    sender: mpsc::Sender<Arc<StreamEvent>>,
}

#[derive(Debug, Default)]
struct State {
    log: VecDeque<Logged>,
    /// Event id → sequence, for every logged change: resume lookups and duplicate detection.
    sequences: HashMap<Uuid, u64>,
    next_sequence: u64,
    /// Changes created (by their UUIDv7 time, in Unix ms) before this may be missing from the log: dropped from
    /// it, or written before the feed's start. A `Last-Event-ID` older than this and not logged is gone.
    horizon_ms: u64,
    /// Whether the feed has started reading (and set the horizon).
    reading: bool,
    streams: HashMap<OwnerId, Vec<Listener>>,
    /// Streams the hub closed, with why; read by their registration's drop.
    ended: HashMap<u64, StreamDisconnect>,
    open: usize,
    next_stream: u64,
    closed: bool,
}

/// What one attempt to open a stream found.
enum Attempt {
    Opened(Subscription),
    /// The `Last-Event-ID`, recent but not logged (yet): this replica may be behind the one that sent it.
    NotYet(Uuid),
}

/// The hub (see the module documentation). Shared by the feed, which publishes, and the handlers.
#[derive(Debug)]
pub struct Hub {
    limits: HubLimits,
    state: Mutex<State>,
    /// Bumped on every logged change, so a resume waiting for its `Last-Event-ID` wakes up to look again.
    logged: watch::Sender<u64>,
}

impl Hub {
    /// An empty hub; until [`Hub::read_from`] is called a resume is refused as [`Refused::Starting`].
    pub fn new(limits: HubLimits) -> Arc<Self> {
        let state = State { horizon_ms: unix_ms(Utc::now()), ..State::default() };
        Arc::new(Self { limits, state: Mutex::new(state), logged: watch::channel(0).0 })
    }

    /// The hub's limits.
    pub fn limits(&self) -> HubLimits {
        self.limits
    }

    /// The feed now reads every change made since `since`: changes older than that are gone for resuming.
    pub fn read_from(&self, since: DateTime<Utc>) {
        let mut state = self.lock();
        state.horizon_ms = unix_ms(since);
        state.reading = true;
    }

    /// Logs `event` and hands it to its owner's streams. A change already logged (the relay publishes at least
    /// once, so the topic can hold it twice) is ignored: returns `false`.
    pub fn publish(&self, event: StreamEvent) -> bool {
        let mut state = self.lock();
        if state.closed || state.sequences.contains_key(&event.id) {
            return false;
        }
        let now = Instant::now();
        self.forget_old(&mut state, now);
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        let event = Arc::new(event);
        state.sequences.insert(event.id, sequence);
        state.log.push_back(Logged { sequence, arrived: now, event: Arc::clone(&event) });
        let mut too_slow = Vec::new();
        if let Some(streams) = state.streams.get_mut(&event.owner) {
            streams.retain(|stream| match stream.sender.try_send(Arc::clone(&event)) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    too_slow.push(stream.id);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        }
        for stream in too_slow {
            state.ended.insert(stream, StreamDisconnect::SlowClient);
        }
        drop(state);
        self.logged.send_modify(|count| *count += 1);
        true
    }

    /// Opens a stream of `owner`'s changes: live, or after the change `resume_after` when given. A resume waits
    /// up to the resume wait for a recent id this replica has not read yet.
    pub async fn subscribe(
        self: &Arc<Self>,
        owner: &OwnerId,
        resume_after: Option<Uuid>,
    ) -> Result<Subscription, Refused> {
        let deadline = tokio::time::Instant::now() + self.limits.resume_wait;
        let mut logged = self.logged.subscribe();
        let refused = loop {
            match self.try_subscribe(owner, resume_after) {
                Ok(Attempt::Opened(subscription)) => return Ok(subscription),
                Ok(Attempt::NotYet(id)) => {
                    if tokio::time::timeout_at(deadline, logged.changed()).await.is_err() {
                        break Refused::Gone { id };
                    }
                }
                Err(refused) => break refused,
            }
        };
        metrics::stream_refused(refused.metric());
        Err(refused)
    }

    /// Closes every stream and refuses new ones: the service is shutting down, and open streams must not hold
    /// the HTTP server's drain.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let streams: Vec<u64> =
            state.streams.drain().flat_map(|(_, streams)| streams).map(|stream| stream.id).collect();
        for stream in streams {
            state.ended.insert(stream, StreamDisconnect::Shutdown);
        }
    }

    fn try_subscribe(self: &Arc<Self>, owner: &OwnerId, resume_after: Option<Uuid>) -> Result<Attempt, Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.streams.get(owner).map_or(0, Vec::len) >= self.limits.max_per_user {
            return Err(Refused::UserLimit { limit: self.limits.max_per_user });
        }
        if state.open >= self.limits.max_total {
            return Err(Refused::TotalLimit { limit: self.limits.max_total });
        }
        let replay = match resume_after {
            None => Vec::new(),
            Some(_) if !state.reading => return Err(Refused::Starting),
            Some(id) => match state.sequences.get(&id).copied() {
                // Another user's change is as unknown as one never made: nothing about it is revealed.
                Some(sequence) if self.logged_owner(&state, sequence) == Some(owner) => state
                    .log
                    .iter()
                    .filter(|logged| logged.sequence > sequence && logged.event.owner == *owner)
                    .map(|logged| Arc::clone(&logged.event))
                    .collect(),
                Some(_) => return Err(Refused::Gone { id }),
                None if uuid_ms(id).is_none_or(|created| created < state.horizon_ms) => {
                    return Err(Refused::Gone { id });
                }
                None => return Ok(Attempt::NotYet(id)),
            },
        };
        let (sender, live) = mpsc::channel(CLIENT_BUFFER);
        let id = state.next_stream;
        state.next_stream += 1;
        state.streams.entry(owner.clone()).or_default().push(Listener { id, sender });
        state.open += 1;
        metrics::stream_opened(state.open);
        let registration = Registration { hub: Arc::clone(self), owner: owner.clone(), id };
        Ok(Attempt::Opened(Subscription { replay, live, registration }))
    }

    fn logged_owner<'a>(&self, state: &'a State, sequence: u64) -> Option<&'a OwnerId> {
        let first = state.log.front()?.sequence;
        let index = usize::try_from(sequence.checked_sub(first)?).ok()?;
        state.log.get(index).map(|logged| &logged.event.owner)
    }

    /// Drops changes older than the resume window, and the oldest beyond the log's size, moving the horizon.
    fn forget_old(&self, state: &mut State, now: Instant) {
        while let Some(oldest) = state.log.front() {
            let expired = now.duration_since(oldest.arrived) > self.limits.resume_window;
            if !expired && state.log.len() < self.limits.resume_events {
                break;
            }
            let Some(forgotten) = state.log.pop_front() else { break };
            state.sequences.remove(&forgotten.event.id);
            let created = uuid_ms(forgotten.event.id).unwrap_or(0);
            state.horizon_ms = state.horizon_ms.max(created.saturating_add(1));
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every await-free step, so a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn unix_ms(time: DateTime<Utc>) -> u64 {
    u64::try_from(time.timestamp_millis()).unwrap_or(0)
}

/// The creation time, in Unix ms, a UUIDv7 carries; `None` for any other UUID version.
fn uuid_ms(id: Uuid) -> Option<u64> {
    (id.get_version_num() == 7).then(|| id.get_timestamp()).flatten().map(|timestamp| {
        let (seconds, nanos) = timestamp.to_unix();
        seconds * 1000 + u64::from(nanos / 1_000_000)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HubLimits {
        HubLimits {
            resume_window: Duration::from_secs(600),
            resume_events: 100,
            resume_wait: Duration::from_millis(200),
            max_per_user: 2,
            max_total: 3,
        }
    }

    fn owner(name: &str) -> OwnerId {
        OwnerId::parse(name).expect("owner")
    }

    fn change(owner_name: &str) -> StreamEvent {
        let id = Uuid::now_v7();
        StreamEvent { id, owner: owner(owner_name), time: Utc::now(), data: id.to_string(), producer: None }
    }

    fn ids(events: &[Arc<StreamEvent>]) -> Vec<Uuid> {
        events.iter().map(|event| event.id).collect()
    }

    async fn next_live(subscription: &mut Subscription) -> Option<Uuid> {
        tokio::time::timeout(Duration::from_secs(1), subscription.live.recv()).await.ok().flatten().map(|e| e.id)
    }

    #[tokio::test]
    async fn each_user_gets_only_their_own_changes_live() {
        let hub = Hub::new(limits());
        let mut alice = hub.subscribe(&owner("alice"), None).await.expect("alice");
        let mut bob = hub.subscribe(&owner("bob"), None).await.expect("bob");
        let for_alice = change("alice");
        let alice_id = for_alice.id;
        assert!(hub.publish(for_alice));
        assert_eq!(next_live(&mut alice).await, Some(alice_id));
        assert!(bob.live.try_recv().is_err(), "bob received alice's change");
    }

    #[tokio::test]
    async fn a_resume_replays_exactly_the_owners_changes_after_the_id_and_a_duplicate_is_ignored() {
        let hub = Hub::new(limits());
        hub.read_from(Utc::now() - chrono::Duration::minutes(1));
        let first = change("alice");
        let first_id = first.id;
        hub.publish(first);
        hub.publish(change("bob"));
        let (second, third) = (change("alice"), change("alice"));
        let expected = vec![second.id, third.id];
        let duplicate = StreamEvent { id: second.id, ..change("alice") };
        hub.publish(second);
        assert!(!hub.publish(duplicate), "a redelivered change was logged twice");
        hub.publish(third);

        let resumed = hub.subscribe(&owner("alice"), Some(first_id)).await.expect("resumes");
        assert_eq!(ids(&resumed.replay), expected);
    }

    #[tokio::test]
    async fn another_users_id_an_old_id_and_an_unknown_recent_id_are_gone() {
        let hub = Hub::new(limits());
        hub.read_from(Utc::now());
        let bobs = change("bob");
        let bobs_id = bobs.id;
        hub.publish(bobs);
        let alice = owner("alice");
        assert_eq!(hub.subscribe(&alice, Some(bobs_id)).await.unwrap_err(), Refused::Gone { id: bobs_id });
        let old = Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, 1_000_000, 0));
        assert_eq!(hub.subscribe(&alice, Some(old)).await.unwrap_err(), Refused::Gone { id: old });
        let not_uuid_v7 = Uuid::nil();
        assert!(hub.subscribe(&alice, Some(not_uuid_v7)).await.is_err());
        // Recent but never published: gone after the resume wait.
        let unknown = Uuid::now_v7();
        assert_eq!(hub.subscribe(&alice, Some(unknown)).await.unwrap_err(), Refused::Gone { id: unknown });
    }

    #[tokio::test]
    async fn a_resume_waits_for_an_id_this_replica_reads_later() {
        let hub = Hub::new(HubLimits { resume_wait: Duration::from_secs(10), ..limits() });
        hub.read_from(Utc::now() - chrono::Duration::minutes(1));
        let (late, after) = (change("alice"), change("alice"));
        let (late_id, after_id) = (late.id, after.id);
        let waiting = tokio::spawn({
            let hub = Arc::clone(&hub);
            async move { hub.subscribe(&owner("alice"), Some(late_id)).await }
        });
        // Publish only once the resume is waiting (it holds a receiver of the change counter while it waits).
        while hub.logged.receiver_count() == 0 {
            tokio::task::yield_now().await;
        }
        hub.publish(late);
        let mut resumed = waiting.await.expect("joins").expect("resumes once the id arrives");
        assert!(resumed.replay.is_empty());
        hub.publish(after);
        assert_eq!(next_live(&mut resumed).await, Some(after_id));
    }

    #[tokio::test]
    async fn limits_refuse_per_user_then_in_total_and_closing_frees_a_place() {
        let hub = Hub::new(limits());
        let alice = owner("alice");
        let first = hub.subscribe(&alice, None).await.expect("first");
        let _second = hub.subscribe(&alice, None).await.expect("second");
        assert_eq!(hub.subscribe(&alice, None).await.unwrap_err(), Refused::UserLimit { limit: 2 });
        let _bob = hub.subscribe(&owner("bob"), None).await.expect("bob");
        assert_eq!(hub.subscribe(&owner("carol"), None).await.unwrap_err(), Refused::TotalLimit { limit: 3 });
        drop(first);
        hub.subscribe(&alice, None).await.expect("a closed stream frees its place");
    }

    #[tokio::test]
    async fn a_client_that_does_not_keep_up_is_closed_and_can_resume_from_the_log() {
        let hub = Hub::new(HubLimits { resume_events: 2 * CLIENT_BUFFER, ..limits() });
        hub.read_from(Utc::now() - chrono::Duration::minutes(1));
        let mut slow = hub.subscribe(&owner("alice"), None).await.expect("opens");
        let mut published = Vec::new();
        for _ in 0..=CLIENT_BUFFER {
            let event = change("alice");
            published.push(event.id);
            hub.publish(event);
        }
        let mut received = Vec::new();
        while let Some(event) = slow.live.recv().await {
            received.push(event.id);
        }
        assert_eq!(received.len(), CLIENT_BUFFER, "the stream ends after what fitted in its buffer");
        let last_seen = *received.last().expect("some");
        drop(slow);
        let resumed = hub.subscribe(&owner("alice"), Some(last_seen)).await.expect("resumes");
        assert_eq!(ids(&resumed.replay), published[CLIENT_BUFFER..].to_vec());
    }

    #[tokio::test]
    async fn the_log_keeps_its_size_and_what_it_forgot_is_gone() {
        let hub = Hub::new(HubLimits { resume_events: 3, ..limits() });
        hub.read_from(Utc::now() - chrono::Duration::minutes(1));
        let published: Vec<Uuid> = (0..5)
            .map(|_| {
                let event = change("alice");
                let id = event.id;
                hub.publish(event);
                id
            })
            .collect();
        let alice = owner("alice");
        assert_eq!(hub.subscribe(&alice, Some(published[0])).await.unwrap_err(), Refused::Gone { id: published[0] });
        let resumed = hub.subscribe(&alice, Some(published[2])).await.expect("still logged");
        assert_eq!(ids(&resumed.replay), published[3..].to_vec());
    }

    #[tokio::test]
    async fn a_resume_before_the_feed_started_is_refused_but_a_live_stream_opens() {
        let hub = Hub::new(limits());
        let alice = owner("alice");
        assert_eq!(hub.subscribe(&alice, Some(Uuid::now_v7())).await.unwrap_err(), Refused::Starting);
        let mut live = hub.subscribe(&alice, None).await.expect("a live stream needs no history");
        hub.read_from(Utc::now());
        let event = change("alice");
        let id = event.id;
        hub.publish(event);
        assert_eq!(next_live(&mut live).await, Some(id));
    }

    #[tokio::test]
    async fn closing_ends_every_stream_and_refuses_new_ones() {
        let hub = Hub::new(limits());
        let mut open = hub.subscribe(&owner("alice"), None).await.expect("opens");
        hub.close();
        assert!(open.live.recv().await.is_none(), "the stream did not end");
        assert_eq!(hub.subscribe(&owner("alice"), None).await.unwrap_err(), Refused::Closed);
    }
}
