//! Business hours: a weekly schedule in the tenant's IANA time zone, with holidays.
//!
//! The schedule is read in local wall-clock time: `09:00` to `17:30` on a Monday means
//! those local times whatever the offset is that day, so a daylight-saving change moves
//! the UTC instants, never the local ones. [`is_open`] and [`next_opening`] are pure
//! functions of the settings and an instant; the engine asks them at its clock's now.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::TenantSettings;

/// When the desk is staffed. `None` in [`TenantSettings::business_hours`] means always open.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// IANA time zone name (`Europe/Berlin`, `America/New_York`, `UTC`); the tz database is
    /// bundled, so it does not depend on the host's.
    pub time_zone: String,
    /// Opening ranges per weekday, local time; a day without ranges is closed.
    #[serde(default)]
    pub weekly: WeeklyHours,
    /// Local dates (`YYYY-MM-DD`) closed all day.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 1000))]
    pub holidays: Vec<String>,
    /// Posted to a visitor who opens a conversation while the desk is closed, and shown by
    /// the widget; `None` posts nothing (the answer still says `offline: true`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000, pattern = r"\S"))]
    pub offline_message: Option<String>,
}

/// Opening ranges for each day of the week.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct WeeklyHours {
    pub mon: Vec<OpenRange>,
    pub tue: Vec<OpenRange>,
    pub wed: Vec<OpenRange>,
    pub thu: Vec<OpenRange>,
    pub fri: Vec<OpenRange>,
    pub sat: Vec<OpenRange>,
    pub sun: Vec<OpenRange>,
}

/// One opening range of a day, local `HH:MM` times; `to` may be `24:00` (end of day), and
/// `from` must be before `to` (a range across midnight is two ranges on two days).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OpenRange {
    /// Opens at (inclusive).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
    )]
    pub from: String,
    /// Closes at (exclusive).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
    )]
    pub to: String,
}

/// Longest offline message, in characters.
pub const MAX_OFFLINE_CHARS: usize = 2_000;
/// Most holidays a schedule may list.
pub const MAX_HOLIDAYS: usize = 1_000;
/// Most ranges on one day.
pub const MAX_RANGES_PER_DAY: usize = 24;

impl WeeklyHours {
    fn days(&self) -> [(&'static str, Weekday, &Vec<OpenRange>); 7] {
        [
            ("mon", Weekday::Monday, &self.mon),
            ("tue", Weekday::Tuesday, &self.tue),
            ("wed", Weekday::Wednesday, &self.wed),
            ("thu", Weekday::Thursday, &self.thu),
            ("fri", Weekday::Friday, &self.fri),
            ("sat", Weekday::Saturday, &self.sat),
            ("sun", Weekday::Sunday, &self.sun),
        ]
    }

    fn of(&self, day: Weekday) -> &[OpenRange] {
        match day {
            Weekday::Monday => &self.mon,
            Weekday::Tuesday => &self.tue,
            Weekday::Wednesday => &self.wed,
            Weekday::Thursday => &self.thu,
            Weekday::Friday => &self.fri,
            Weekday::Saturday => &self.sat,
            Weekday::Sunday => &self.sun,
        }
    }
}

/// Minutes since local midnight of `HH:MM` (`00:00` to `24:00`).
fn minutes(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn date(text: &str) -> Option<Date> {
    // `YYYY-MM-DD` exactly: jiff's parser accepts more forms than a settings file should.
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    text.parse().ok()
}

/// A range in minutes, for ranges that parse (validated settings always do).
fn span(range: &OpenRange) -> Option<(u32, u32)> {
    Some((minutes(&range.from)?, minutes(&range.to)?))
}

impl BusinessHours {
    /// Checks the schedule; the error text says what is wrong (the caller names the
    /// field `business_hours`).
    pub fn check(&self) -> Result<(), String> {
        if TimeZone::get(&self.time_zone).is_err() {
            return Err(format!("unknown time zone {:?}", self.time_zone));
        }
        for (name, _, ranges) in self.weekly.days() {
            if ranges.len() > MAX_RANGES_PER_DAY {
                return Err(format!(
                    "weekly.{name}: at most {MAX_RANGES_PER_DAY} ranges"
                ));
            }
            let mut spans = Vec::with_capacity(ranges.len());
            for r in ranges {
                let (Some(from), Some(to)) = (minutes(&r.from), minutes(&r.to)) else {
                    return Err(format!(
                        "weekly.{name}: {:?}-{:?} is not HH:MM to HH:MM (00:00 to 24:00)",
                        r.from, r.to
                    ));
                };
                if from >= to {
                    return Err(format!("weekly.{name}: {} must be before {}", r.from, r.to));
                }
                spans.push((from, to, r));
            }
            spans.sort_by_key(|s| s.0);
            for pair in spans.windows(2) {
                if pair[1].0 < pair[0].1 {
                    return Err(format!(
                        "weekly.{name}: {}-{} overlaps {}-{}",
                        pair[0].2.from, pair[0].2.to, pair[1].2.from, pair[1].2.to
                    ));
                }
            }
        }
        if self.holidays.len() > MAX_HOLIDAYS {
            return Err(format!("holidays: at most {MAX_HOLIDAYS}"));
        }
        if let Some(bad) = self.holidays.iter().find(|d| date(d).is_none()) {
            return Err(format!("holidays: {bad:?} is not a date YYYY-MM-DD"));
        }
        if let Some(text) = &self.offline_message
            && (text.trim().is_empty() || text.chars().count() > MAX_OFFLINE_CHARS)
        {
            return Err(format!(
                "offline_message: use 1 to {MAX_OFFLINE_CHARS} characters, or null for none"
            ));
        }
        Ok(())
    }

    fn zone(&self) -> Option<TimeZone> {
        TimeZone::get(&self.time_zone).ok()
    }

    fn is_holiday(&self, day: Date) -> bool {
        self.holidays.iter().any(|d| date(d) == Some(day))
    }

    fn open_at(&self, local: &Zoned) -> bool {
        if self.is_holiday(local.date()) {
            return false;
        }
        let minute =
            u32::from(local.hour().unsigned_abs()) * 60 + u32::from(local.minute().unsigned_abs());
        self.weekly
            .of(local.weekday())
            .iter()
            .filter_map(span)
            .any(|(from, to)| from <= minute && minute < to)
    }
}

fn timestamp(at: OffsetDateTime) -> Timestamp {
    Timestamp::from_nanosecond(at.unix_timestamp_nanos()).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn offset_date_time(at: Timestamp) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(at.as_nanosecond()).ok()
}

/// Whether the desk is open at `at`: always without business hours; otherwise when `at`,
/// read in the schedule's time zone, is not on a holiday and falls in one of its weekday's
/// ranges.
pub fn is_open(settings: &TenantSettings, at: OffsetDateTime) -> bool {
    let Some(hours) = &settings.business_hours else {
        return true;
    };
    // Validated settings always name a known zone; an unknown one never closes the desk.
    let Some(zone) = hours.zone() else {
        return true;
    };
    hours.open_at(&timestamp(at).to_zoned(zone))
}

/// When the desk next opens after `at`: `None` while it is open at `at` (or always open),
/// or when the schedule never opens. On a day whose opening time falls in a
/// daylight-saving gap, it opens when the clocks jump.
pub fn next_opening(settings: &TenantSettings, at: OffsetDateTime) -> Option<OffsetDateTime> {
    let hours = settings.business_hours.as_ref()?;
    let zone = hours.zone()?;
    let now = timestamp(at);
    let local = now.to_zoned(zone.clone());
    if hours.open_at(&local) {
        return None;
    }
    // Two years ahead covers any holiday list a settings check accepts (1000 dates can
    // still close more days than that; such a desk has no opening to announce).
    let mut day = local.date();
    for _ in 0..=731 {
        if !hours.is_holiday(day) {
            let mut starts: Vec<u32> = hours
                .weekly
                .of(day.weekday())
                .iter()
                .filter_map(span)
                .map(|s| s.0)
                .collect();
            starts.sort_unstable();
            for start in starts {
                let time = Time::new((start / 60) as i8, (start % 60) as i8, 0, 0).ok()?;
                let opens = local_instant(&zone, day.to_datetime(time))?;
                if opens > now {
                    return offset_date_time(opens);
                }
            }
        }
        day = day.tomorrow().ok()?;
    }
    None
}

/// The first instant whose local time is `dt` or, when `dt` is skipped by a clock change,
/// the instant of the change.
fn local_instant(zone: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    let ambiguous = zone.to_ambiguous_timestamp(dt);
    match ambiguous.offset() {
        AmbiguousOffset::Gap { after, .. } => {
            let before_gap = after.to_timestamp(dt).ok()?;
            zone.following(before_gap).next().map(|t| t.timestamp())
        }
        _ => ambiguous.earlier().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn range(from: &str, to: &str) -> OpenRange {
        OpenRange {
            from: from.into(),
            to: to.into(),
        }
    }

    fn berlin() -> TenantSettings {
        let weekday = vec![range("09:00", "17:30")];
        TenantSettings {
            business_hours: Some(BusinessHours {
                time_zone: "Europe/Berlin".into(),
                weekly: WeeklyHours {
                    mon: weekday.clone(),
                    tue: weekday.clone(),
                    wed: weekday.clone(),
                    thu: weekday.clone(),
                    fri: weekday,
                    sat: vec![range("02:30", "04:00")],
                    sun: vec![],
                },
                holidays: vec!["2026-12-25".into()],
                offline_message: Some("We are closed.".into()),
            }),
            ..TenantSettings::default()
        }
    }

    #[test]
    fn no_schedule_is_always_open() {
        let s = TenantSettings::default();
        assert!(is_open(&s, datetime!(2026-01-01 03:00 UTC)));
        assert_eq!(next_opening(&s, datetime!(2026-01-01 03:00 UTC)), None);
    }

    #[test]
    fn open_in_local_time_across_a_daylight_saving_change() {
        let s = berlin();
        // Friday 27 March 2026, winter time (UTC+1): 09:00 local is 08:00 UTC.
        assert!(!is_open(&s, datetime!(2026-03-27 07:59 UTC)));
        assert!(is_open(&s, datetime!(2026-03-27 08:00 UTC)));
        assert!(is_open(&s, datetime!(2026-03-27 16:29 UTC)));
        assert!(!is_open(&s, datetime!(2026-03-27 16:30 UTC)));
        // Clocks go forward on Sunday 29 March; Monday 30 March is summer time (UTC+2):
        // 09:00 local is 07:00 UTC.
        assert!(!is_open(&s, datetime!(2026-03-30 06:59 UTC)));
        assert!(is_open(&s, datetime!(2026-03-30 07:00 UTC)));
        // From Friday evening the next opening is Saturday 02:30 local, winter time.
        assert_eq!(
            next_opening(&s, datetime!(2026-03-27 18:00 UTC)),
            Some(datetime!(2026-03-28 01:30 UTC))
        );
        // From Saturday night, over the Sunday change, to Monday 09:00 summer time.
        assert_eq!(
            next_opening(&s, datetime!(2026-03-28 04:00 UTC)),
            Some(datetime!(2026-03-30 07:00 UTC))
        );
        assert_eq!(next_opening(&s, datetime!(2026-03-30 07:00 UTC)), None);
    }

    #[test]
    fn an_opening_inside_the_clock_change_gap_opens_when_the_clocks_jump() {
        let mut s = berlin();
        let hours = s.business_hours.as_mut().unwrap();
        // Sunday 29 March 2026: 02:00 local jumps to 03:00 (01:00 UTC).
        hours.weekly.sun = vec![range("02:30", "04:00")];
        assert!(!is_open(&s, datetime!(2026-03-29 00:59 UTC)));
        assert!(is_open(&s, datetime!(2026-03-29 01:00 UTC)));
        assert_eq!(
            next_opening(&s, datetime!(2026-03-29 00:00 UTC)),
            Some(datetime!(2026-03-29 01:00 UTC))
        );
    }

    #[test]
    fn a_holiday_is_closed_all_day() {
        let s = berlin();
        // Friday 25 December 2026 would be open at 10:00 local (09:00 UTC).
        assert!(!is_open(&s, datetime!(2026-12-25 09:00 UTC)));
        assert!(is_open(&s, datetime!(2026-12-24 09:00 UTC)));
        // Thursday evening: Friday is a holiday, so Saturday 02:30 local.
        assert_eq!(
            next_opening(&s, datetime!(2026-12-24 20:00 UTC)),
            Some(datetime!(2026-12-26 01:30 UTC))
        );
    }

    #[test]
    fn a_schedule_without_ranges_never_opens() {
        let s = TenantSettings {
            business_hours: Some(BusinessHours {
                time_zone: "UTC".into(),
                ..BusinessHours::default()
            }),
            ..TenantSettings::default()
        };
        assert!(!is_open(&s, datetime!(2026-06-01 12:00 UTC)));
        assert_eq!(next_opening(&s, datetime!(2026-06-01 12:00 UTC)), None);
    }

    #[test]
    fn bad_schedules_are_refused_with_a_reason() {
        let check = |edit: fn(&mut BusinessHours)| {
            let mut s = berlin();
            edit(s.business_hours.as_mut().unwrap());
            match s.validate() {
                Err(crate::Error::Validation { field, message }) => {
                    assert_eq!(field, "business_hours");
                    message
                }
                other => panic!("{other:?}"),
            }
        };
        assert!(berlin().validate().is_ok());
        assert!(check(|h| h.time_zone = "Mars/Olympus".into()).contains("time zone"));
        assert!(check(|h| h.weekly.mon = vec![range("9:00", "17:00")]).contains("HH:MM"));
        assert!(check(|h| h.weekly.mon = vec![range("09:00", "24:30")]).contains("HH:MM"));
        assert!(check(|h| h.weekly.tue = vec![range("17:00", "09:00")]).contains("before"));
        assert!(
            check(|h| h.weekly.wed = vec![range("09:00", "12:00"), range("11:00", "13:00")])
                .contains("overlaps")
        );
        assert!(check(|h| h.holidays = vec!["2026-02-30".into()]).contains("holidays"));
        assert!(check(|h| h.offline_message = Some(" ".into())).contains("offline_message"));
        let mut whole_day = berlin();
        whole_day.business_hours.as_mut().unwrap().weekly.sun =
            vec![range("00:00", "12:00"), range("12:00", "24:00")];
        assert!(whole_day.validate().is_ok());
    }
}
