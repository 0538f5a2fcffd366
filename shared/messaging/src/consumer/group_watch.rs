//! The consumer's guard against a group that has stopped giving it work: when this member has owned no
//! partition for longer than the broker needs to expire a dead member and rebalance, while the group is
//! small enough that every member should own one, it leaves the group and joins again.
//!
//! # Why this exists (root cause, found in tansu 0.6.0's group coordinator)
//!
//! A member SIGKILLed and restarted *inside* `session.timeout.ms` was left with an empty assignment for ever
//! on tansu 0.6.0 (the broker `cargo xtask up` and the tests run). The broker is at fault, not librdkafka:
//!
//! 1. The new member B joins while the dead member A is still the group's leader (its session has not
//!    lapsed). The group moves to "forming" with A kept as leader, so B is a follower and its SyncGroup is
//!    answered REBALANCE_IN_PROGRESS while A is still counted alive; B rejoins, round after round.
//! 2. tansu expires members only inside requests (no timer). When A's session lapses during one of B's
//!    join/sync rounds, `missed_heartbeat` removes A and clears the leader slot.
//! 3. `Forming::sync` refuses a SyncGroup only when a leader exists and is someone else. With the slot empty
//!    it accepts B's *follower* SyncGroup, whose assignment list is empty, stores it as the group's
//!    assignment and answers success: B's rebalance callback reports an empty assignment.
//! 4. The group is now "formed" with B as its only member and no assignment. B's heartbeats match its
//!    generation, so the broker never answers REBALANCE_IN_PROGRESS again and nothing ever changes.
//!
//! Restarted at once, B's own join record expired together with A's (tansu does not refresh it on join) and
//! it started over as leader after about one session timeout; restarted after the timeout, A was already gone
//! and B led at once. Only the window in between, a member back before its old self expired, stalls. The same
//! hole opens when one of two replicas dies and the survivor rejoins while the dead one still leads. Upstream
//! fixed the check after 0.6.0 (a SyncGroup must come from the leader and cover every member: tansu-io/tansu
//! commit 50e5666, June 2026, in the 0.7 pre-releases under the project's new name); 0.6.0 is the newest on
//! crates.io.
//!
//! # Why this remedy
//!
//! - Static membership (`group.instance.id`) was weighed and not chosen: tansu 0.6 skips its expiry sweep for
//!   requests from static members and never fences an old instance, so a static member that is gone for good
//!   (scale-down, a pod renamed by its Deployment) would hold its partitions on tansu for ever; on Apache
//!   Kafka a static member does not leave the group on shutdown, so every rolling restart would hold its
//!   partitions for a whole session timeout; and the survivor case above is not fixed by it at all.
//! - Waiting one session timeout before joining fixes only the restart case, and costs every start.
//! - This guard fixes every case seen, costs nothing while work is assigned, and never fires on a correct
//!   broker: a stable Kafka group where members do not outnumber partitions gives every member a partition
//!   (range and round-robin both do), and a group that is rebalancing is left alone.
//!
//! Leaving and joining again (a fresh client) sends LeaveGroup, which on tansu moves the group back to
//! forming with no leader: the first member to join becomes leader and assigns every partition.
//!
//! # The second hole: a partition given to a member that is already dead
//!
//! With two replicas, one killed and started again inside the session timeout: the new member joins while
//! the dead one is still counted, the leader hands the dead one a partition, and when its session lapses
//! tansu drops it without a rebalance. Both live members own partitions, so the guard above never fires, and
//! the dead member's partition has no consumer for ever. No member can see another's assignment (and tansu
//! cannot describe the group), so [`BacklogWatch`] watches the one thing every member can read: a partition
//! this member does not own whose committed offset stands behind its end without moving for the guard's
//! patience has nobody consuming it, and leaving and joining again makes the group assign it anew. On a
//! correct broker this fires only when another member holds a partition without making progress (stuck or
//! dying): a rebalance is then the right answer too.
//!
//! Seen while building this: tansu 0.6.0 with SQLite storage answers every DescribeGroups with an error (its
//! broker log: `invalid type: string "{\"generation_id\":1, … \"state\":{\"Formed\":{\"assignments\":{},
//! \"leader\":\"notification-…\"}}}", expected struct GroupDetail`: it reads the stored group back as a JSON
//! string). That same log line shows the stuck group of step 4: formed, one member, its leader, no assignment.
//! So a group the broker cannot describe, while it answers metadata, is treated as owing partitions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a member that owns nothing waits before it looks at the group, after it last owned partitions
/// or last rejoined. Starts at twice the session timeout (a dead member's session lapses and a rebalance
/// runs within that on a correct broker) and doubles after each rejoin that did not help, up to [`Self::MAX`].
#[derive(Debug, Clone)]
pub(crate) struct GroupWatch {
    first_patience: Duration,
    patience: Duration,
    /// Since when this member has owned nothing (`None` while it owns partitions).
    idle_since: Option<Instant>,
}

impl GroupWatch {
    /// The longest wait between rejoins, however often they did not help.
    pub(crate) const MAX: Duration = Duration::from_secs(300);

    pub(crate) fn new(session_timeout: Duration, now: Instant) -> Self {
        let first_patience = session_timeout.saturating_mul(2).min(Self::MAX);
        Self { first_patience, patience: first_patience, idle_since: Some(now) }
    }

    /// Records what this member owns now; true when it has owned nothing for longer than its patience, so the
    /// group should be looked at.
    pub(crate) fn observe(&mut self, owned_partitions: usize, now: Instant) -> bool {
        if owned_partitions > 0 {
            self.idle_since = None;
            self.patience = self.first_patience;
            return false;
        }
        let idle_since = *self.idle_since.get_or_insert(now);
        now.saturating_duration_since(idle_since) > self.patience
    }

    /// The group was looked at and this member left and joined again: wait longer before the next time.
    pub(crate) fn rejoined(&mut self, now: Instant) {
        self.idle_since = Some(now);
        self.patience = self.patience.saturating_mul(2).min(Self::MAX);
    }

    /// The group was looked at and owes this member nothing (more members than partitions, or a rebalance
    /// under way): start waiting again.
    pub(crate) fn group_is_fine(&mut self, now: Instant) {
        self.idle_since = Some(now);
    }

    /// How long the member waits now before looking at the group.
    pub(crate) fn patience(&self) -> Duration {
        self.patience
    }
}

/// What the broker says of the group, as far as the guard needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupView {
    /// The largest partition count among the subscribed topics (0: no metadata, e.g. the broker is down).
    pub(crate) partitions: usize,
    /// The group as DescribeGroups tells it; `None` when the broker could not describe it although it answers
    /// metadata (tansu 0.6 with SQLite storage fails every DescribeGroups: it reads its stored group back as a
    /// JSON string, not an object).
    pub(crate) described: Option<DescribedGroup>,
}

/// A group as DescribeGroups tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DescribedGroup {
    /// Kafka's group state name (`Stable`, `PreparingRebalance`, …; tansu says `Stable`, `Assigning`, `Empty`).
    pub(crate) state: String,
    /// Members the broker counts in the group, this one included if it counts it.
    pub(crate) members: usize,
}

impl GroupView {
    /// Whether a member that owns nothing is being left out: the topics exist, no rebalance is under way, and
    /// the group does not have more members than the largest subscribed topic has partitions, so every member
    /// should own one. A group the broker cannot describe is taken to owe partitions: rejoining costs one
    /// rebalance, and [`GroupWatch`] spaces repeated rejoins out, while waiting could stall the group for ever.
    pub(crate) fn owes_this_member_partitions(&self) -> bool {
        if self.partitions == 0 {
            return false;
        }
        match &self.described {
            None => true,
            Some(group) => {
                let rebalancing = matches!(group.state.as_str(), "PreparingRebalance" | "CompletingRebalance");
                !rebalancing && group.members <= self.partitions
            }
        }
    }
}

/// One partition of a subscribed topic this member does not own: where the group stands in it and its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnownedPartition {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    /// The group's committed offset; `None` before anything was committed (the low watermark then counts).
    pub(crate) committed: Option<i64>,
    pub(crate) low: i64,
    pub(crate) high: i64,
}

impl UnownedPartition {
    /// Where the group will read next: its committed offset, or the start of the partition.
    fn next_offset(&self) -> i64 {
        self.committed.unwrap_or(self.low).max(self.low)
    }
}

/// Partitions with work waiting and a committed offset that does not move (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct BacklogWatch {
    /// Per partition with waiting work: the offset the group stood at, and since when it has stood there.
    waiting: HashMap<(String, i32), (i64, Instant)>,
    last_sampled: Option<Instant>,
    /// Rejoins since nothing last waited: each one that did not help doubles the patience.
    rejoins: u32,
}

impl BacklogWatch {
    /// Whether it is time for another sample (the queries are round trips, so at most one per `every`).
    pub(crate) fn due(&mut self, every: Duration, now: Instant) -> bool {
        let due = self.last_sampled.is_none_or(|last| now.saturating_duration_since(last) >= every);
        if due {
            self.last_sampled = Some(now);
        }
        due
    }

    /// Records a sample of the partitions other members should be consuming; returns those whose waiting work
    /// has not moved for longer than `patience`.
    pub(crate) fn observe(&mut self, sample: &[UnownedPartition], patience: Duration, now: Instant) -> Vec<String> {
        let mut stalled = Vec::new();
        let mut waiting = HashMap::new();
        for unowned in sample {
            let next = unowned.next_offset();
            if unowned.high <= next {
                continue;
            }
            let key = (unowned.topic.clone(), unowned.partition);
            let since = match self.waiting.get(&key) {
                Some((offset, since)) if *offset == next => *since,
                _ => now,
            };
            if now.saturating_duration_since(since) > patience {
                stalled.push(format!("{}/{} (at {next}, end {})", unowned.topic, unowned.partition, unowned.high));
            }
            waiting.insert(key, (next, since));
        }
        if waiting.is_empty() {
            self.rejoins = 0;
        }
        self.waiting = waiting;
        stalled
    }

    /// How long waiting work may stand still: `base`, doubled for each rejoin that did not help, up to
    /// [`GroupWatch::MAX`] (a member that holds a partition and is stuck is not rebalanced away in a loop).
    pub(crate) fn patience(&self, base: Duration) -> Duration {
        base.saturating_mul(2u32.saturating_pow(self.rejoins)).min(GroupWatch::MAX)
    }

    /// After a rejoin the partitions are assigned anew: start watching from scratch, with more patience.
    pub(crate) fn rejoined(&mut self) {
        self.waiting.clear();
        self.rejoins = self.rejoins.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: Duration = Duration::from_secs(10);

    #[test]
    fn a_member_with_partitions_never_looks_at_the_group() {
        let start = Instant::now();
        let mut watch = GroupWatch::new(SESSION, start);
        assert!(!watch.observe(3, start + Duration::from_secs(600)));
    }

    #[test]
    fn a_member_owning_nothing_looks_after_twice_the_session_timeout() {
        let start = Instant::now();
        let mut watch = GroupWatch::new(SESSION, start);
        assert!(!watch.observe(0, start + Duration::from_secs(19)));
        assert!(watch.observe(0, start + Duration::from_secs(21)));
    }

    #[test]
    fn patience_doubles_after_each_rejoin_up_to_the_maximum_and_resets_once_partitions_arrive() {
        let start = Instant::now();
        let mut watch = GroupWatch::new(SESSION, start);
        watch.rejoined(start);
        assert_eq!(watch.patience(), Duration::from_secs(40));
        assert!(!watch.observe(0, start + Duration::from_secs(39)));
        assert!(watch.observe(0, start + Duration::from_secs(41)));
        for _ in 0..10 {
            watch.rejoined(start);
        }
        assert_eq!(watch.patience(), GroupWatch::MAX);
        let later = start + Duration::from_secs(1000);
        assert!(!watch.observe(1, later));
        assert_eq!(watch.patience(), Duration::from_secs(20));
        // Idle again (first seen a second later): the wait counts from then, at the first patience again.
        assert!(!watch.observe(0, later + Duration::from_secs(1)));
        assert!(!watch.observe(0, later + Duration::from_secs(20)));
        assert!(watch.observe(0, later + Duration::from_secs(22)));
    }

    #[test]
    fn a_fine_group_restarts_the_wait_without_growing_it() {
        let start = Instant::now();
        let mut watch = GroupWatch::new(SESSION, start);
        let looked = start + Duration::from_secs(21);
        assert!(watch.observe(0, looked));
        watch.group_is_fine(looked);
        assert_eq!(watch.patience(), Duration::from_secs(20));
        assert!(!watch.observe(0, looked + Duration::from_secs(19)));
    }

    #[test]
    fn the_group_owes_a_member_partitions_only_when_members_do_not_outnumber_them_and_no_rebalance_runs() {
        let view = |state: &str, members, partitions| GroupView {
            partitions,
            described: Some(DescribedGroup { state: state.to_owned(), members }),
        };
        // tansu 0.6's stuck group: one member, an empty assignment, "Stable".
        assert!(view("Stable", 1, 3).owes_this_member_partitions());
        assert!(view("Stable", 3, 3).owes_this_member_partitions());
        // The broker does not count this member at all.
        assert!(view("Empty", 0, 3).owes_this_member_partitions());
        // A fourth replica over three partitions is idle by design.
        assert!(!view("Stable", 4, 3).owes_this_member_partitions());
        // Kafka is rebalancing: it finishes (or times out) on its own.
        assert!(!view("PreparingRebalance", 1, 3).owes_this_member_partitions());
        assert!(!view("CompletingRebalance", 2, 3).owes_this_member_partitions());
        // No metadata (broker down): rejoining would not help.
        assert!(!view("Stable", 1, 0).owes_this_member_partitions());
        assert!(!GroupView { partitions: 0, described: None }.owes_this_member_partitions());
        // The broker answers metadata but cannot describe the group (tansu 0.6 on SQLite): rejoin.
        assert!(GroupView { partitions: 3, described: None }.owes_this_member_partitions());
    }

    fn unowned(partition: i32, committed: Option<i64>, high: i64) -> UnownedPartition {
        UnownedPartition { topic: "reminders".into(), partition, committed, low: 0, high }
    }

    #[test]
    fn waiting_work_that_does_not_move_for_the_patience_is_stalled() {
        let mut watch = BacklogWatch::default();
        let start = Instant::now();
        let patience = Duration::from_secs(20);
        let sample = [unowned(0, Some(5), 5), unowned(1, Some(3), 7), unowned(2, None, 2)];
        assert!(watch.observe(&sample, patience, start).is_empty(), "nothing has waited yet");
        let later = start + Duration::from_secs(21);
        let stalled = watch.observe(&sample, patience, later);
        // Partition 0 has no waiting work; 1 and 2 (never committed: counted from its start) have not moved.
        assert_eq!(stalled, ["reminders/1 (at 3, end 7)", "reminders/2 (at 0, end 2)"]);
    }

    #[test]
    fn progress_or_an_empty_backlog_restarts_the_wait() {
        let mut watch = BacklogWatch::default();
        let start = Instant::now();
        let patience = Duration::from_secs(20);
        watch.observe(&[unowned(1, Some(3), 7)], patience, start);
        // Another member committed: it is consuming, so the wait starts again.
        assert!(watch.observe(&[unowned(1, Some(4), 7)], patience, start + Duration::from_secs(15)).is_empty());
        assert!(watch.observe(&[unowned(1, Some(4), 7)], patience, start + Duration::from_secs(30)).is_empty());
        assert_eq!(watch.observe(&[unowned(1, Some(4), 7)], patience, start + Duration::from_secs(36)).len(), 1);
        // Caught up: nothing waits, nothing is stalled, and a new backlog waits from scratch.
        assert!(watch.observe(&[unowned(1, Some(7), 7)], patience, start + Duration::from_secs(40)).is_empty());
        assert!(watch.observe(&[unowned(1, Some(7), 9)], patience, start + Duration::from_secs(50)).is_empty());
        watch.rejoined();
        assert!(watch.observe(&[unowned(1, Some(7), 9)], patience, start + Duration::from_secs(80)).is_empty());
    }

    #[test]
    fn patience_doubles_with_rejoins_that_did_not_help_and_resets_when_nothing_waits() {
        let mut watch = BacklogWatch::default();
        let base = Duration::from_secs(20);
        assert_eq!(watch.patience(base), base);
        watch.rejoined();
        watch.rejoined();
        assert_eq!(watch.patience(base), Duration::from_secs(80));
        for _ in 0..10 {
            watch.rejoined();
        }
        assert_eq!(watch.patience(base), GroupWatch::MAX);
        watch.observe(&[unowned(1, Some(7), 7)], base, Instant::now());
        assert_eq!(watch.patience(base), base);
    }

    #[test]
    fn samples_are_rate_limited() {
        let mut watch = BacklogWatch::default();
        let start = Instant::now();
        assert!(watch.due(Duration::from_secs(5), start));
        assert!(!watch.due(Duration::from_secs(5), start + Duration::from_secs(4)));
        assert!(watch.due(Duration::from_secs(5), start + Duration::from_secs(5)));
    }
}
