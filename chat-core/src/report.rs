//! Reports: how fast the desk answers and solves, whether customers are happy, who is busy.
//!
//! Every figure is defined here once, per conversation of the tenant (and of one agent
//! when the query names one), over a period `[from, to)`:
//!
//! | figure | conversations counted |
//! |--------|-----------------------|
//! | `opened` | created in the period |
//! | `closed` | whose current close (`closed_at`) is in the period; for an agent, what it handled |
//! | `reopened` | reopens in the period (a conversation reopened twice counts twice) |
//! | `first_response` | opened in the period with a first agent reply: reply − creation |
//! | `resolution` | closed in the period: close − creation |
//! | `csat` | rated in the period: the score |
//!
//! Breakdowns key each conversation by its assigned agent, department, channel or tags (a
//! conversation with two tags counts under both; untagged ones under none). Durations give
//! the median and the 90th percentile by nearest rank: the smallest sample at or above
//! that share of the sorted samples, so every backend picks the very same sample.
//!
//! Stores compute these with aggregate queries; [`report_rows`] is the same definition
//! over conversations in memory (the in-memory store, and the naive side of the bench).

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::ids::{AgentId, ConversationId, TenantId};
use crate::model::Conversation;

/// Longest period a report covers, in days.
pub const MAX_REPORT_DAYS: i32 = 366;
/// Longest period of an hourly series, in days (744 points at most).
pub const MAX_HOURLY_DAYS: i32 = 31;
/// Most feedback texts one report returns.
pub const MAX_FEEDBACK: usize = 500;

/// What a breakdown groups conversations by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// The assigned agent (key: its id; `null`: nobody).
    Agent,
    /// The department (`null`: the general queue).
    Department,
    /// The channel.
    Channel,
    /// Each tag.
    Tag,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: &'static [Dimension] = &[
        Dimension::Agent,
        Dimension::Department,
        Dimension::Channel,
        Dimension::Tag,
    ];

    /// The snake_case name used in query strings and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Agent => "agent",
            Dimension::Department => "department",
            Dimension::Channel => "channel",
            Dimension::Tag => "tag",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s output.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|d| d.as_str() == text)
    }
}

/// Hourly or daily points of a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// One point per local hour.
    Hour,
    /// One point per local day.
    Day,
}

/// Which conversations and which instants a store's report covers; the engine builds it
/// from the caller's [`ReportPeriod`] and its policy.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportQuery {
    /// Tenant.
    pub tenant: TenantId,
    /// Start, inclusive.
    pub from: OffsetDateTime,
    /// End, exclusive.
    pub to: OffsetDateTime,
    /// Only conversations assigned to this agent.
    pub agent: Option<AgentId>,
}

impl ReportQuery {
    fn covers(&self, at: OffsetDateTime) -> bool {
        self.from <= at && at < self.to
    }

    fn includes(&self, c: &Conversation) -> bool {
        c.tenant_id == self.tenant && self.agent.is_none_or(|a| c.assigned_agent_id == Some(a))
    }
}

/// How many samples, and their median and 90th percentile (nearest rank), in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Durations {
    /// Samples.
    pub count: u64,
    /// Median, seconds; `None` without samples.
    pub median_secs: Option<f64>,
    /// 90th percentile, seconds; `None` without samples.
    pub p90_secs: Option<f64>,
}

impl Durations {
    /// From a count and the two picked samples in nanoseconds (what a store's query gives).
    pub fn from_nanos(count: u64, median: Option<i64>, p90: Option<i64>) -> Self {
        let secs = |ns: i64| ns as f64 / 1e9;
        Self {
            count,
            median_secs: median.map(secs),
            p90_secs: p90.map(secs),
        }
    }

    /// From every sample, in nanoseconds, in any order.
    pub fn of(mut samples: Vec<i64>) -> Self {
        samples.sort_unstable();
        let n = samples.len() as u64;
        let pick = |percent: u64| (n > 0).then(|| samples[nearest_rank(n, percent) as usize - 1]);
        Self::from_nanos(n, pick(50), pick(90))
    }
}

/// The 1-based rank of the `percent` percentile of `n` sorted samples, by nearest rank:
/// `ceil(percent * n / 100)`. SQL backends compute the same with integer arithmetic,
/// `(n * percent + 99) / 100`.
pub fn nearest_rank(n: u64, percent: u64) -> u64 {
    (n * percent).div_ceil(100).max(1)
}

/// Customer satisfaction: how many ratings, their average and how many of each score.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Csat {
    /// Ratings.
    pub count: u64,
    /// Average score; `None` without ratings.
    pub average: Option<f64>,
    /// How many ratings gave 1, 2, 3, 4 and 5.
    pub distribution: [u64; 5],
}

impl Csat {
    /// From how many ratings gave each score.
    pub fn from_distribution(distribution: [u64; 5]) -> Self {
        let count: u64 = distribution.iter().sum();
        let sum: u64 = distribution
            .iter()
            .zip(1u64..)
            .map(|(n, score)| n * score)
            .sum();
        Self {
            count,
            average: (count > 0).then(|| sum as f64 / count as f64),
            distribution,
        }
    }
}

/// The figures of one group of conversations (or of all, without a dimension).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportRow {
    /// The group: an agent id, department, channel or tag; `None` for the whole tenant,
    /// for conversations without an agent or department.
    pub key: Option<String>,
    /// Conversations opened.
    pub opened: u64,
    /// Conversations closed (an agent's handled conversations).
    pub closed: u64,
    /// Reopens.
    pub reopened: u64,
    /// First response time.
    pub first_response: Durations,
    /// Resolution time.
    pub resolution: Durations,
    /// Ratings.
    pub csat: Csat,
}

/// One point of a series: what happened in `[start, start of the next point)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    /// Start of the hour or day, in the caller's time zone.
    #[serde(with = "crate::model::rfc3339")]
    pub start: OffsetDateTime,
    /// Conversations opened.
    pub opened: u64,
    /// Conversations closed.
    pub closed: u64,
    /// Reopens.
    pub reopened: u64,
}

/// A rating with its text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Feedback {
    /// The conversation rated.
    pub conversation_id: ConversationId,
    /// Its assigned agent.
    pub agent_id: Option<AgentId>,
    /// 1 to 5.
    pub score: u8,
    /// What the customer wrote.
    pub feedback: String,
    /// When.
    #[serde(with = "crate::model::rfc3339")]
    pub rated_at: OffsetDateTime,
}

/// A report's period as the caller gives it: local dates, both included, in an IANA time
/// zone.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportPeriod {
    /// First day.
    pub from: Date,
    /// Last day (included).
    pub to: Date,
    /// The caller's time zone.
    pub tz: TimeZone,
    /// Its name, as given.
    pub tz_name: String,
}

impl ReportPeriod {
    /// Parses `YYYY-MM-DD` dates and an IANA zone name (`UTC` when `None`).
    /// [`Error::Validation`] names `from`, `to` or `tz`.
    pub fn parse(from: &str, to: &str, tz: Option<&str>) -> Result<Self> {
        let day = |field: &'static str, text: &str| {
            let b = text.as_bytes();
            if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
                return Err(Error::validation(field, "a date YYYY-MM-DD"));
            }
            text.parse::<Date>()
                .map_err(|_| Error::validation(field, "a date YYYY-MM-DD"))
        };
        let tz_name = tz.unwrap_or("UTC").to_owned();
        let zone = TimeZone::get(&tz_name)
            .map_err(|_| Error::validation("tz", "an IANA time zone name, e.g. Europe/Berlin"))?;
        let period = Self {
            from: day("from", from)?,
            to: day("to", to)?,
            tz: zone,
            tz_name,
        };
        if period.to < period.from {
            return Err(Error::validation("to", "on or after from"));
        }
        if period.days() > MAX_REPORT_DAYS {
            return Err(Error::validation(
                "to",
                format!("at most {MAX_REPORT_DAYS} days after from"),
            ));
        }
        Ok(period)
    }

    /// Days covered.
    pub fn days(&self) -> i32 {
        (self.to - self.from).get_days() + 1
    }

    /// The instants the period spans: the start of `from` to the start of the day after
    /// `to`, in the zone.
    pub fn instants(&self) -> Result<(OffsetDateTime, OffsetDateTime)> {
        let after = self
            .to
            .checked_add(1.day())
            .map_err(|_| Error::validation("to", "too far in the future"))?;
        Ok((self.start_of(self.from)?, self.start_of(after)?))
    }

    /// The starts of the series' points and the period's end: `n + 1` instants for `n`
    /// points. An hour repeated by a daylight-saving change is one point per instant hour;
    /// a skipped hour is no point. [`Error::Validation`] on `to` for an hourly series over
    /// [`MAX_HOURLY_DAYS`].
    pub fn bounds(&self, interval: Interval) -> Result<Vec<OffsetDateTime>> {
        let (start, end) = self.instants()?;
        match interval {
            Interval::Day => {
                let mut out = Vec::new();
                let mut day = self.from;
                while day <= self.to {
                    out.push(self.start_of(day)?);
                    day = day
                        .checked_add(1.day())
                        .map_err(|_| Error::validation("to", "too far in the future"))?;
                }
                out.push(end);
                Ok(out)
            }
            Interval::Hour => {
                if self.days() > MAX_HOURLY_DAYS {
                    return Err(Error::validation(
                        "to",
                        format!("an hourly series covers at most {MAX_HOURLY_DAYS} days"),
                    ));
                }
                // Instant hours from the local midnight: local whole hours in every zone
                // whose daylight-saving shift is a whole hour (all but Lord Howe Island).
                let mut out = Vec::new();
                let mut at = start;
                while at < end {
                    out.push(at);
                    at += time::Duration::HOUR;
                }
                out.push(end);
                Ok(out)
            }
        }
    }

    /// `at` with the zone's offset at that instant, for display.
    pub fn local(&self, at: OffsetDateTime) -> OffsetDateTime {
        let offset = Timestamp::from_nanosecond(at.unix_timestamp_nanos())
            .map(|ts| self.tz.to_offset(ts).seconds())
            .unwrap_or(0);
        time::UtcOffset::from_whole_seconds(offset)
            .map(|o| at.to_offset(o))
            .unwrap_or(at)
    }

    fn start_of(&self, day: Date) -> Result<OffsetDateTime> {
        let zoned = day
            .to_zoned(self.tz.clone())
            .map_err(|_| Error::validation("from", "outside the supported range"))?;
        OffsetDateTime::from_unix_timestamp_nanos(zoned.timestamp().as_nanosecond())
            .map_err(|_| Error::validation("from", "outside the supported range"))
    }
}

fn keys(c: &Conversation, by: Option<Dimension>) -> Vec<Option<String>> {
    match by {
        None => vec![None],
        Some(Dimension::Agent) => vec![c.assigned_agent_id.map(|a| a.0.to_string())],
        Some(Dimension::Department) => vec![c.department.clone()],
        Some(Dimension::Channel) => vec![Some(c.channel.as_str().to_owned())],
        Some(Dimension::Tag) => c.tags.iter().cloned().map(Some).collect(),
    }
}

/// The report rows over conversations in memory, by key (`None` first): the definition the
/// SQL of every store must agree with. `reopens` are `(conversation, when)` marks.
pub fn report_rows<'a>(
    conversations: impl IntoIterator<Item = &'a Conversation>,
    reopens: &[(ConversationId, OffsetDateTime)],
    query: &ReportQuery,
    by: Option<Dimension>,
) -> Vec<ReportRow> {
    #[derive(Default)]
    struct Acc {
        opened: u64,
        closed: u64,
        reopened: u64,
        first: Vec<i64>,
        resolution: Vec<i64>,
        scores: [u64; 5],
    }
    let nanos = |a: OffsetDateTime, b: OffsetDateTime| (a - b).whole_nanoseconds() as i64;
    let mut groups: BTreeMap<Option<String>, Acc> = BTreeMap::new();
    let mut by_id: HashMap<ConversationId, &Conversation> = HashMap::new();
    for c in conversations {
        if !query.includes(c) {
            continue;
        }
        by_id.insert(c.id, c);
        for key in keys(c, by) {
            let opened = query.covers(c.created_at);
            let closed = c.closed_at.filter(|at| query.covers(*at));
            let rated = c.rating.as_ref().filter(|r| query.covers(r.rated_at));
            if !opened && closed.is_none() && rated.is_none() {
                continue;
            }
            let acc = groups.entry(key).or_default();
            if opened {
                acc.opened += 1;
                if let Some(first) = c.first_response_at {
                    acc.first.push(nanos(first, c.created_at));
                }
            }
            if let Some(closed) = closed {
                acc.closed += 1;
                acc.resolution.push(nanos(closed, c.created_at));
            }
            if let Some(r) = rated
                && (1..=5).contains(&r.score)
            {
                acc.scores[usize::from(r.score) - 1] += 1;
            }
        }
    }
    for (id, at) in reopens {
        if !query.covers(*at) {
            continue;
        }
        if let Some(c) = by_id.get(id) {
            for key in keys(c, by) {
                groups.entry(key).or_default().reopened += 1;
            }
        }
    }
    groups
        .into_iter()
        .map(|(key, acc)| ReportRow {
            key,
            opened: acc.opened,
            closed: acc.closed,
            reopened: acc.reopened,
            first_response: Durations::of(acc.first),
            resolution: Durations::of(acc.resolution),
            csat: Csat::from_distribution(acc.scores),
        })
        .collect()
}

/// The series over conversations in memory: see [`report_rows`].
pub fn series_points<'a>(
    conversations: impl IntoIterator<Item = &'a Conversation>,
    reopens: &[(ConversationId, OffsetDateTime)],
    query: &ReportQuery,
    bounds: &[OffsetDateTime],
) -> Vec<SeriesPoint> {
    let mut points: Vec<SeriesPoint> = bounds
        .windows(2)
        .map(|w| SeriesPoint {
            start: w[0],
            opened: 0,
            closed: 0,
            reopened: 0,
        })
        .collect();
    let slot = |at: OffsetDateTime| {
        let i = bounds.partition_point(|b| *b <= at);
        (i >= 1 && i < bounds.len()).then(|| i - 1)
    };
    let mut by_id = HashMap::new();
    for c in conversations {
        if !query.includes(c) {
            continue;
        }
        by_id.insert(c.id, c);
        if let Some(i) = slot(c.created_at) {
            points[i].opened += 1;
        }
        if let Some(i) = c.closed_at.and_then(slot) {
            points[i].closed += 1;
        }
    }
    for (id, at) in reopens {
        if by_id.contains_key(id)
            && let Some(i) = slot(*at)
        {
            points[i].reopened += 1;
        }
    }
    points
}

/// The feedback texts over conversations in memory, newest first: see [`report_rows`].
pub fn feedback_of<'a>(
    conversations: impl IntoIterator<Item = &'a Conversation>,
    query: &ReportQuery,
    limit: usize,
) -> Vec<Feedback> {
    let mut out: Vec<Feedback> = conversations
        .into_iter()
        .filter(|c| query.includes(c))
        .filter_map(|c| {
            let r = c.rating.as_ref()?;
            let text = r.feedback.as_ref().filter(|f| !f.is_empty())?;
            query.covers(r.rated_at).then(|| Feedback {
                conversation_id: c.id,
                agent_id: c.assigned_agent_id,
                score: r.score,
                feedback: text.clone(),
                rated_at: r.rated_at,
            })
        })
        .collect();
    out.sort_by_key(|f| std::cmp::Reverse((f.rated_at, f.conversation_id)));
    out.truncate(limit);
    out
}
