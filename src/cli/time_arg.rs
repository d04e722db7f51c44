//! Times on the command line: RFC 3339 (`2026-11-11T00:00:00+08:00`), `now`, or an offset from now (`+5m`,
//! `-1h`, `+30s`, `+2d`).

use chrono::{DateTime, Duration, Utc};

/// Parses a time argument relative to `now`.
pub(crate) fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Some(sign) = text.chars().next().filter(|c| *c == '+' || *c == '-') {
        let body = &text[1..];
        let split = body.find(|c: char| !c.is_ascii_digit()).unwrap_or(body.len());
        let (amount, unit) = body.split_at(split);
        let amount: i64 = amount.parse().map_err(|_| format!("invalid offset {text:?}: expected e.g. +5m"))?;
        let offset = match unit {
            "s" => Duration::try_seconds(amount),
            "m" => Duration::try_minutes(amount),
            "h" => Duration::try_hours(amount),
            "d" => Duration::try_days(amount),
            _ => None,
        }
        .ok_or_else(|| format!("invalid offset {text:?}: use s, m, h or d, e.g. +5m"))?;
        let offset = if sign == '-' { -offset } else { offset };
        return now.checked_add_signed(offset).ok_or_else(|| format!("offset {text:?} is out of range"));
    }
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        format!("invalid time {text:?}: use RFC 3339 (2026-11-11T20:00:00+08:00), now, or +5m-style offsets")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_rfc3339() {
        let now = Utc::now();
        assert_eq!(parse_time("+5m", now), Ok(now + Duration::minutes(5)));
        assert_eq!(parse_time("-2h", now), Ok(now - Duration::hours(2)));
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(
            parse_time("2026-11-11T20:00:00+08:00", now).map(|t| t.to_rfc3339()),
            Ok("2026-11-11T12:00:00+00:00".to_string())
        );
        for bad in ["+5", "+5y", "5m", "yesterday", "+99999999999999d", ""] {
            assert!(parse_time(bad, now).is_err(), "{bad:?}");
        }
    }
}
