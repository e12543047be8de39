//! Text → value parsing for the typed columns, hand-rolled: these run once per field of a
//! million-row file, and the general-purpose parsers (chrono's format strings above all) cost
//! more than the tokenizer itself.

/// Why a field is not a value of its type; the caller words it with the type's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Problem {
    /// Not the type's notation at all.
    Syntax,
    /// The right notation, but a number, month, day or hour that does not exist.
    Range,
    /// A timestamp with non-zero digits after the microseconds, which would be lost.
    Precision,
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// An integer with an optional sign: digits only, no spaces, separators or exponent.
pub(super) fn parse_i64(text: &[u8]) -> Result<i64, Problem> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(Problem::Syntax);
    }
    // Accumulating towards the sign keeps i64::MIN representable; an overflow is only reported
    // once the whole field is known to be digits, so `99999999999999999999x` is a syntax error.
    let mut value: i64 = 0;
    let mut overflow = false;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return Err(Problem::Syntax);
        }
        let next =
            value.checked_mul(10).and_then(|v| if negative { v.checked_sub(digit.into()) } else { v.checked_add(digit.into()) });
        match next {
            Some(v) => value = v,
            None => overflow = true,
        }
    }
    if overflow { Err(Problem::Range) } else { Ok(value) }
}

pub(super) fn parse_i32(text: &[u8]) -> Result<i32, Problem> {
    i32::try_from(parse_i64(text)?).map_err(|_| Problem::Range)
}

/// Rust's float grammar: `1`, `-1.5`, `.5`, `1e-3`, and `inf`/`infinity`/`nan` in any case (the
/// spellings Spark and Redshift write for the IEEE specials).
pub(super) fn parse_f64(text: &[u8]) -> Result<f64, Problem> {
    std::str::from_utf8(text).ok().and_then(|s| s.parse().ok()).ok_or(Problem::Syntax)
}

pub(super) fn parse_bool(text: &[u8]) -> Result<bool, Problem> {
    const TRUE: [&[u8]; 4] = [b"true", b"t", b"1", b"yes"];
    const FALSE: [&[u8]; 4] = [b"false", b"f", b"0", b"no"];
    if TRUE.iter().any(|t| text.eq_ignore_ascii_case(t)) {
        Ok(true)
    } else if FALSE.iter().any(|f| text.eq_ignore_ascii_case(f)) {
        Ok(false)
    } else {
        Err(Problem::Syntax)
    }
}

/// `YYYY-MM-DD` as days since 1970-01-01 (Arrow's Date32).
pub(super) fn parse_date(text: &[u8]) -> Result<i32, Problem> {
    if text.len() != 10 || text[4] != b'-' || text[7] != b'-' {
        return Err(Problem::Syntax);
    }
    let year = digits(&text[0..4])?;
    let month = digits(&text[5..7])?;
    let day = digits(&text[8..10])?;
    days_from_civil(year, month, day).ok_or(Problem::Range)
}

/// `YYYY-MM-DD HH:MM:SS[.f{1,9}][Z|±HH:MM|±HHMM|±HH]` (or `T` between date and time) as
/// microseconds since the epoch, UTC; a value without an offset is UTC already.
///
/// Up to nine fractional digits are read so that nanosecond writers' output is accepted, but
/// only when the digits past the sixth are zeros: the column holds microseconds, and silently
/// dropping precision would make two distinct source values compare equal.
pub(super) fn parse_timestamp(text: &[u8]) -> Result<i64, Problem> {
    if text.len() < 19 || !matches!(text[10], b' ' | b'T') || text[13] != b':' || text[16] != b':' {
        return Err(Problem::Syntax);
    }
    let days = parse_date(&text[..10]);
    let (hour, minute, second) = (digits(&text[11..13])?, digits(&text[14..16])?, digits(&text[17..19])?);
    let (micros, rest) = fraction(&text[19..])?;
    let offset = offset_seconds(rest)?;
    // Syntax first, so a malformed tail is reported as such even when the date is impossible.
    let days = days?;
    if hour > 23 || minute > 59 || second > 59 {
        return Err(Problem::Range);
    }
    let seconds = i64::from(days) * SECONDS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second) - offset;
    Ok(seconds * MICROS_PER_SECOND + micros)
}

/// An optional `.` and 1–9 digits: the microseconds they make, and what follows them.
fn fraction(text: &[u8]) -> Result<(i64, &[u8]), Problem> {
    let Some((b'.', rest)) = text.split_first() else { return Ok((0, text)) };
    let count = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if count == 0 || count > 9 {
        return Err(Problem::Syntax);
    }
    let (fraction, tail) = rest.split_at(count);
    if fraction.iter().skip(6).any(|&b| b != b'0') {
        return Err(Problem::Precision);
    }
    let micros = fraction.iter().chain(std::iter::repeat(&b'0')).take(6).fold(0, |acc, &b| acc * 10 + i64::from(b - b'0'));
    Ok((micros, tail))
}

/// Nothing or `Z` (UTC), or `±HH:MM`, `±HHMM`, `±HH`: seconds east of UTC.
fn offset_seconds(text: &[u8]) -> Result<i64, Problem> {
    let (sign, rest) = match text.split_first() {
        None => return Ok(0),
        Some((b'Z', [])) => return Ok(0),
        Some((b'+', rest)) => (1, rest),
        Some((b'-', rest)) => (-1, rest),
        Some(_) => return Err(Problem::Syntax),
    };
    let (hours, minutes) = match rest {
        [h1, h2] => (digits(&[*h1, *h2])?, 0),
        [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?),
        _ => return Err(Problem::Syntax),
    };
    if hours > 23 || minutes > 59 {
        return Err(Problem::Range);
    }
    Ok(sign * i64::from(hours * 3600 + minutes * 60))
}

/// A fixed-width run of ASCII digits.
fn digits(text: &[u8]) -> Result<u32, Problem> {
    text.iter()
        .try_fold(0u32, |acc, &b| if b.is_ascii_digit() { Ok(acc * 10 + u32::from(b - b'0')) } else { Err(Problem::Syntax) })
}

/// Days since 1970-01-01 of a proleptic Gregorian date, or `None` when the month or day does not
/// exist. The era arithmetic is Howard Hinnant's `days_from_civil`.
fn days_from_civil(year: u32, month: u32, day: u32) -> Option<i32> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    i32::try_from(era * 146_097 + day_of_era - 719_468).ok()
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveDateTime};

    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_i64(b"0"), Ok(0));
        assert_eq!(parse_i64(b"-42"), Ok(-42));
        assert_eq!(parse_i64(b"+7"), Ok(7));
        assert_eq!(parse_i64(b"007"), Ok(7));
        assert_eq!(parse_i64(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), Err(Problem::Range));
        assert_eq!(parse_i64(b"99999999999999999999x"), Err(Problem::Syntax));
        for bad in [&b""[..], b"-", b"+", b"1.0", b"1e3", b" 1", b"1 ", b"1_000", b"0x10"] {
            assert_eq!(parse_i64(bad), Err(Problem::Syntax), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_i32(b"2147483647"), Ok(i32::MAX));
        assert_eq!(parse_i32(b"-2147483648"), Ok(i32::MIN));
        assert_eq!(parse_i32(b"2147483648"), Err(Problem::Range));
    }

    #[test]
    fn doubles_and_booleans() {
        assert_eq!(parse_f64(b"-1.5e3"), Ok(-1500.0));
        assert_eq!(parse_f64(b".5"), Ok(0.5));
        assert!(parse_f64(b"NaN").unwrap().is_nan());
        assert_eq!(parse_f64(b"-Infinity"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b" 1.5"), Err(Problem::Syntax));
        assert_eq!(parse_f64(b"1,5"), Err(Problem::Syntax));
        assert_eq!(parse_f64(b"\xff"), Err(Problem::Syntax));
        for t in ["true", "TRUE", "t", "T", "1", "yes", "Yes"] {
            assert_eq!(parse_bool(t.as_bytes()), Ok(true), "{t}");
        }
        for f in ["false", "False", "f", "0", "no", "NO"] {
            assert_eq!(parse_bool(f.as_bytes()), Ok(false), "{f}");
        }
        for bad in ["", "y", "n", "2", "truee", " true"] {
            assert_eq!(parse_bool(bad.as_bytes()), Err(Problem::Syntax), "{bad}");
        }
    }

    #[test]
    fn dates_agree_with_chrono() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let mut day = NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
        let last = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
        while day <= last {
            let text = day.format("%Y-%m-%d").to_string();
            assert_eq!(parse_date(text.as_bytes()), Ok((day - epoch).num_days() as i32), "{text}");
            day = day + chrono::Days::new(97);
        }
        assert_eq!(parse_date(b"2024-02-29"), Ok((NaiveDate::from_ymd_opt(2024, 2, 29).unwrap() - epoch).num_days() as i32));
        assert_eq!(parse_date(b"9999-12-31"), Ok((last - epoch).num_days() as i32));
        for impossible in ["2023-02-29", "1900-02-29", "2024-13-01", "2024-00-10", "2024-04-31", "2024-01-00"] {
            assert_eq!(parse_date(impossible.as_bytes()), Err(Problem::Range), "{impossible}");
        }
        for bad in ["2024-1-01", "2024/01/01", "20240101", "2024-01-01 ", "24-01-01", "２０２４-01-01"] {
            assert_eq!(parse_date(bad.as_bytes()), Err(Problem::Syntax), "{bad}");
        }
    }

    fn micros(text: &str) -> i64 {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").unwrap().and_utc().timestamp_micros()
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp(b"2020-05-01 14:52:32"), Ok(micros("2020-05-01 14:52:32")));
        assert_eq!(parse_timestamp(b"2020-05-01T14:52:32"), Ok(micros("2020-05-01 14:52:32")));
        assert_eq!(parse_timestamp(b"2020-05-01 14:52:32Z"), Ok(micros("2020-05-01 14:52:32")));
        assert_eq!(parse_timestamp(b"2020-05-01 14:52:32.5"), Ok(micros("2020-05-01 14:52:32.5")));
        assert_eq!(parse_timestamp(b"2020-05-01 14:52:32.123456"), Ok(micros("2020-05-01 14:52:32.123456")));
        assert_eq!(parse_timestamp(b"2020-05-01 14:52:32.123456000"), Ok(micros("2020-05-01 14:52:32.123456")));
        assert_eq!(parse_timestamp(b"2020-05-01T16:52:32.25+02:00"), Ok(micros("2020-05-01 14:52:32.25")));
        assert_eq!(parse_timestamp(b"2020-05-01 09:22:32-0530"), Ok(micros("2020-05-01 14:52:32")));
        assert_eq!(parse_timestamp(b"2020-05-01 15:52:32+01"), Ok(micros("2020-05-01 14:52:32")));
        assert_eq!(parse_timestamp(b"1969-12-31 23:59:59.999999"), Ok(-1));
        assert_eq!(parse_timestamp(b"2020-05-01 14:52:32.1234567"), Err(Problem::Precision));
        for impossible in [
            "2020-05-01 24:00:00",
            "2020-05-01 14:60:00",
            "2020-05-01 14:52:60",
            "2020-02-30 14:52:32",
            "2020-05-01 14:52:32+24:00",
        ] {
            assert_eq!(parse_timestamp(impossible.as_bytes()), Err(Problem::Range), "{impossible}");
        }
        for bad in [
            "2020-05-01",
            "2020-05-01 14:52",
            "2020-05-01  14:52:32",
            "2020-05-01t14:52:32",
            "2020-05-01 14:52:32.",
            "2020-05-01 14:52:32.1234567890",
            "2020-05-01 14:52:32 +02:00",
            "2020-05-01 14:52:32+2:00",
            "2020-05-01 14:52:32UTC",
            "2020-05-01 14:52:32Z ",
            "2020-02-30 14:52:32 junk",
        ] {
            assert_eq!(parse_timestamp(bad.as_bytes()), Err(Problem::Syntax), "{bad}");
        }
    }
}
