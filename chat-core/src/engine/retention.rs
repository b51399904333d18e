//! The event log's retention: what compaction keeps, and the pass that removes the rest.
//!
//! The log is what feeds replay (a socket or `/v1/events` catching up from its cursor) and
//! what the webhook outbox delivers. A client further behind than the replay window is told
//! to resync anyway, so events older than that serve nobody once every pending delivery
//! has gone out: keeping them forever made the log most of a busy desk's database.

use time::Duration;

use super::Engine;
use crate::error::Result;
use crate::ids::TenantId;

/// Events removed per store call: each call is one short write, so posts are not held
/// up behind a large compaction.
pub const COMPACTION_BATCH: usize = 10_000;

/// How much of the event log compaction keeps: an event goes once it is **both** older
/// than [`keep_for`](Self::keep_for) **and** not among the tenant's newest
/// [`keep_events`](Self::keep_events). The store keeps more when it must: the newest event,
/// everything from the oldest pending webhook delivery on, and (SQLite) what its search
/// indexer has not read. A client whose cursor is older than what is kept is told to
/// resync (the feed's [`ResyncReason::TooOld`](crate::feed::ResyncReason::TooOld),
/// `resync_required` on `/v1/events`).
///
/// ```
/// use chat_core::EventRetention;
///
/// let kept = EventRetention::default();
/// assert_eq!(kept.keep_events, 4 * EventRetention::REPLAY_WINDOW);
/// assert_eq!(kept.keep_for, time::Duration::days(30));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRetention {
    /// The newest events always kept, per tenant. Keep at least the replay window of the
    /// feeds that read this log ([`REPLAY_WINDOW`](Self::REPLAY_WINDOW) by default; the
    /// server's `RealtimeConfig::max_replay`): below it, a client the replay would have
    /// caught up is told to resync instead.
    pub keep_events: u64,
    /// Events younger than this are always kept.
    pub keep_for: Duration,
    /// Whether [`Engine::compact_events`] removes anything.
    pub enabled: bool,
}

impl EventRetention {
    /// The replay window of a feed ([`FeedConfig::max_replay`](crate::feed::FeedConfig)'s
    /// default): a client this far behind is replayed rather than told to resync.
    pub const REPLAY_WINDOW: u64 = 50_000;

    /// Keeps everything: compaction removes nothing.
    pub fn forever() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

impl Default for EventRetention {
    /// Four replay windows (200,000 events) and 30 days.
    fn default() -> Self {
        Self {
            keep_events: 4 * Self::REPLAY_WINDOW,
            keep_for: Duration::days(30),
            enabled: true,
        }
    }
}

impl Engine {
    /// The retention the engine compacts to.
    pub fn event_retention(&self) -> EventRetention {
        self.inner.retention
    }

    /// Removes the tenant's events that [`EventRetention`] no longer keeps, at the engine
    /// clock's now, and says how many went. [`Engine::run_timers`] calls it; it costs one
    /// read when nothing is due.
    ///
    /// The last event old enough is found by a binary search over the log (events are
    /// appended in time order, so `at` grows with `seq`), then everything up to it is
    /// deleted in batches of [`COMPACTION_BATCH`].
    pub async fn compact_events(&self, tenant: TenantId) -> Result<u64> {
        let retention = self.inner.retention;
        if !retention.enabled {
            return Ok(0);
        }
        let store = &self.inner.store;
        let head = store.event_head(tenant).await?;
        let by_count = head.saturating_sub(retention.keep_events);
        let Some(oldest) = store.events_since(tenant, 0, 1).await?.pop() else {
            return Ok(0);
        };
        if by_count < oldest.seq {
            return Ok(0);
        }
        let cutoff = self.now() - retention.keep_for;
        // The newest seq in [oldest, by_count] logged at or before the cutoff, if any.
        let (mut lo, mut hi) = (oldest.seq, by_count);
        let mut through = None;
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            let Some(event) = store.events_since(tenant, mid - 1, 1).await?.pop() else {
                break;
            };
            if event.seq <= by_count && event.at <= cutoff {
                through = Some(event.seq);
                lo = event.seq + 1;
            } else {
                hi = mid - 1;
            }
        }
        let Some(through) = through else {
            return Ok(0);
        };
        let mut removed = 0;
        loop {
            let n = store
                .compact_events(tenant, through, COMPACTION_BATCH)
                .await?;
            removed += n;
            if n < COMPACTION_BATCH as u64 {
                return Ok(removed);
            }
        }
    }
}
