//! When a pipeline runs: a cron expression in a time zone, or a rate (`every 15m`).
//!
//! - **Cron**: five fields (minute, hour, day of month, month, day of week) or a nickname
//!   (`@hourly`, `@daily`, …), evaluated in the pipeline's IANA time zone (UTC by default) by
//!   the `croner` crate. Across daylight-saving changes it behaves as Vixie cron does: a local
//!   time the clocks skip fires once, at the change (the first instant after the gap); a local
//!   time that happens twice fires once, at its first occurrence.
//! - **Rate**: `every 15m`, `every 2h`, `every 1d`: the instants that are whole multiples of the
//!   period since the Unix epoch, so every process computes the same instants whenever it
//!   starts (`every 15m` fires at :00, :15, :30 and :45).
//!
//! Everything here is a pure function of the instants it is given: the service's scheduler
//! asks with its injected clock's time.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    Cron { cron: Box<croner::Cron>, zone: Tz },
    Every(chrono::Duration),
}

impl Schedule {
    /// Parses `text` (a cron expression or `every <duration>`) in `zone` (an IANA name; UTC when
    /// `None`). Errors say what is wrong, for the caller to prefix with the field's path.
    pub fn parse(text: &str, zone: Option<&str>) -> Result<Schedule, String> {
        let zone = match zone {
            None => Tz::UTC,
            Some(name) => Tz::from_str(name).map_err(|_| format!("'{name}' is not an IANA time zone (such as Europe/Berlin)"))?,
        };
        let text = text.trim();
        if let Some(rate) = text.strip_prefix("every ") {
            let period = crate::config::parse_duration(rate)?;
            if period.as_secs() < 60 {
                return Err(format!("'{text}': a rate must be at least a minute"));
            }
            if zone != Tz::UTC {
                return Err("time_zone applies to cron expressions; a rate is the same in every zone".into());
            }
            return Ok(Schedule::Every(chrono::Duration::from_std(period).map_err(|e| e.to_string())?));
        }
        if !text.starts_with('@') && text.split_whitespace().count() != 5 {
            return Err(format!(
                "'{text}' is not a cron expression of five fields (minute hour day month weekday) or a rate (every 15m)"
            ));
        }
        let cron = croner::Cron::from_str(text).map_err(|e| format!("'{text}' is not a cron expression: {e}"))?;
        Ok(Schedule::Cron { cron: Box::new(cron), zone })
    }

    /// The first firing strictly after `after`; `None` when there is none (a cron expression
    /// that never matches again, such as the 30th of February).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(period) => {
                let p = period.num_milliseconds();
                let t = after.timestamp_millis();
                Utc.timestamp_millis_opt((t.div_euclid(p) + 1) * p).single()
            }
            Schedule::Cron { cron, zone } => {
                let local = after.with_timezone(zone);
                cron.find_next_occurrence(&local, false).ok().map(|t| t.with_timezone(&Utc))
            }
        }
    }

    /// The last firing in `(since, until]`, if any: what a service that was down in between
    /// missed.
    pub fn last_between(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut last = None;
        let mut t = self.next_after(since)?;
        while t <= until {
            last = Some(t);
            // After a long outage the walk is long: jump near the end for rates.
            t = match self {
                Schedule::Every(period) if until - t > *period * 2 => self.next_after(until - *period * 2)?,
                _ => self.next_after(t)?,
            };
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn firings(schedule: &Schedule, from: &str, n: usize) -> Vec<String> {
        let mut t = utc(from);
        let mut out = Vec::new();
        for _ in 0..n {
            t = schedule.next_after(t).unwrap();
            out.push(t.to_rfc3339());
        }
        out
    }

    #[test]
    fn rates_fire_on_whole_multiples_of_their_period() {
        let every = Schedule::parse("every 15m", None).unwrap();
        assert_eq!(
            firings(&every, "2026-03-29T00:07:00Z", 3),
            ["2026-03-29T00:15:00+00:00", "2026-03-29T00:30:00+00:00", "2026-03-29T00:45:00+00:00"]
        );
        // Strictly after: a firing instant itself is not returned again.
        assert_eq!(every.next_after(utc("2026-03-29T00:15:00Z")).unwrap(), utc("2026-03-29T00:30:00Z"));
        let hourly = Schedule::parse("every 2h", None).unwrap();
        assert_eq!(hourly.next_after(utc("2026-03-29T01:59:59Z")).unwrap(), utc("2026-03-29T02:00:00Z"));
    }

    #[test]
    fn cron_in_a_zone_across_the_spring_change() {
        // Europe/Berlin, 2026-03-29: 02:00 local becomes 03:00 (UTC+1 → UTC+2).
        let daily = Schedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            firings(&daily, "2026-03-27T12:00:00Z", 4),
            [
                "2026-03-28T01:30:00+00:00", // 02:30 CET
                "2026-03-29T01:00:00+00:00", // 02:30 does not exist: at the change, 03:00 CEST
                "2026-03-30T00:30:00+00:00", // 02:30 CEST
                "2026-03-31T00:30:00+00:00",
            ]
        );
        let hourly = Schedule::parse("0 * * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            firings(&hourly, "2026-03-29T00:00:00Z", 3),
            ["2026-03-29T01:00:00+00:00", "2026-03-29T02:00:00+00:00", "2026-03-29T03:00:00+00:00"],
            "hourly stays hourly in UTC terms"
        );
    }

    #[test]
    fn cron_in_a_zone_across_the_autumn_change() {
        // Europe/Berlin, 2026-10-25: 03:00 local becomes 02:00 again (UTC+2 → UTC+1).
        let daily = Schedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            firings(&daily, "2026-10-23T12:00:00Z", 3),
            [
                "2026-10-24T00:30:00+00:00", // 02:30 CEST
                "2026-10-25T00:30:00+00:00", // the first 02:30, once
                "2026-10-26T01:30:00+00:00", // 02:30 CET
            ]
        );
    }

    #[test]
    fn missed_firings_are_found_between_two_instants() {
        let every = Schedule::parse("every 15m", None).unwrap();
        assert_eq!(every.last_between(utc("2026-01-01T00:00:00Z"), utc("2026-01-01T00:14:59Z")), None);
        assert_eq!(
            every.last_between(utc("2026-01-01T00:00:00Z"), utc("2026-01-03T07:50:00Z")),
            Some(utc("2026-01-03T07:45:00Z"))
        );
        let weekly = Schedule::parse("0 6 * * MON", Some("America/New_York")).unwrap();
        assert_eq!(
            weekly.last_between(utc("2026-01-01T00:00:00Z"), utc("2026-01-20T00:00:00Z")),
            Some(utc("2026-01-19T11:00:00Z"))
        );
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        let err = |text: &str, zone: Option<&str>| Schedule::parse(text, zone).unwrap_err();
        assert!(err("0 * * *", None).contains("five fields"), "{}", err("0 * * *", None));
        assert!(err("61 * * * *", None).contains("is not a cron expression"), "{}", err("61 * * * *", None));
        assert!(err("every 10s", None).contains("at least a minute"));
        assert!(err("every soon", None).contains("is not a duration"));
        assert!(err("0 * * * *", Some("Mars/Olympus")).contains("IANA"));
        assert!(err("every 5m", Some("Europe/Berlin")).contains("time_zone applies to cron"));
        assert!(err("*/5 * * * * *", None).contains("five fields"));
        Schedule::parse("@daily", Some("Asia/Tokyo")).unwrap();
    }
}
