//! What every backend can store: checks applied where input enters the agent,
//! identically for SQLite and Postgres. Postgres refuses a NUL character in
//! text and instants before 4713 BC; SQLite would take both. So both refuse
//! them here, with a message a parent or client can act on, instead of one
//! backend answering 500.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};

use crate::agent::{AgentError, MAX_TEXT_CHARS};

/// Earliest and latest calendar years any date or instant may have.
pub const MIN_YEAR: i32 = 1;
pub const MAX_YEAR: i32 = 9999;

/// Characters that render as nothing: zero-width spaces and joiners, word
/// joiners, the byte-order mark, soft hyphens, direction marks and isolates.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{180E}'
                | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        )
}

/// Refuses a NUL character anywhere in `value`.
pub fn no_nul(field: &str, value: &str) -> Result<(), AgentError> {
    if value.contains('\0') {
        return Err(AgentError::Invalid(format!("`{field}` contains a NUL character")));
    }
    Ok(())
}

/// A text a parent wrote: no NUL, not blank (invisible characters count as
/// blank), at most `MAX_TEXT_CHARS`; returned trimmed of invisible edges.
pub fn text(field: &str, value: &str) -> Result<String, AgentError> {
    no_nul(field, value)?;
    let trimmed = value.trim_matches(is_invisible);
    if trimmed.is_empty() {
        return Err(AgentError::Invalid(if field == "text" { "the text is empty".into() } else { format!("`{field}` is empty") }));
    }
    let chars = value.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(AgentError::Invalid(format!("the text has {chars} characters; the limit is {MAX_TEXT_CHARS}")));
    }
    Ok(trimmed.to_string())
}

/// Text that may be empty (a caption, a message beside a photo): no NUL, at
/// most `MAX_TEXT_CHARS`; returned without invisible characters at its ends.
pub fn optional_text(field: &str, value: &str) -> Result<String, AgentError> {
    no_nul(field, value)?;
    let trimmed = value.trim_matches(is_invisible);
    let chars = trimmed.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(AgentError::Invalid(format!("`{field}` has {chars} characters; the limit is {MAX_TEXT_CHARS}")));
    }
    Ok(trimmed.to_string())
}

/// A short label (a name, an alias, a chat id, a filter): no NUL, not blank,
/// at most `max` characters; returned trimmed.
pub fn label(field: &str, value: &str, max: usize) -> Result<String, AgentError> {
    no_nul(field, value)?;
    let trimmed = value.trim_matches(is_invisible);
    if trimmed.is_empty() {
        return Err(AgentError::Invalid(format!("`{field}` is empty")));
    }
    if trimmed.chars().count() > max {
        return Err(AgentError::Invalid(format!("`{field}` is longer than {max} characters")));
    }
    Ok(trimmed.to_string())
}

/// A calendar date within years 1–9999.
pub fn date(field: &str, value: NaiveDate) -> Result<NaiveDate, AgentError> {
    if (MIN_YEAR..=MAX_YEAR).contains(&value.year()) {
        Ok(value)
    } else {
        Err(AgentError::Invalid(format!("`{field}` must be between the years {MIN_YEAR} and {MAX_YEAR}")))
    }
}

/// An instant within years 1–9999 (in UTC).
pub fn instant(field: &str, value: DateTime<Utc>) -> Result<DateTime<Utc>, AgentError> {
    date(field, value.date_naive()).map(|_| value)
}

/// A client's local time within years 1–9999, both locally and in UTC
/// (so "yesterday" and "tomorrow" from it are dates too).
pub fn local_instant(field: &str, value: DateTime<FixedOffset>) -> Result<DateTime<FixedOffset>, AgentError> {
    date(field, value.date_naive())?;
    instant(field, value.to_utc()).map(|_| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_only_text_is_empty_text() {
        for blank in ["", "   ", "\u{200B}", "\u{FEFF}\u{200B} \n", "\u{2060}\u{00AD}"] {
            assert!(matches!(text("text", blank), Err(AgentError::Invalid(m)) if m == "the text is empty"), "{blank:?}");
        }
        assert_eq!(text("text", "\u{FEFF} 민지 \u{200B}").unwrap(), "민지");
    }

    #[test]
    fn nul_is_refused_in_text_and_labels() {
        assert!(matches!(text("text", "a\0b"), Err(AgentError::Invalid(m)) if m.contains("NUL")));
        assert!(matches!(label("name", "Min\0ji", 80), Err(AgentError::Invalid(m)) if m.contains("`name`")));
    }

    #[test]
    fn dates_outside_years_one_to_9999_are_refused() {
        let ok = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        assert_eq!(date("birth_date", ok).unwrap(), ok);
        assert!(date("birth_date", NaiveDate::from_ymd_opt(-4714, 1, 1).unwrap()).is_err());
        assert!(date("birth_date", NaiveDate::from_ymd_opt(10000, 1, 1).unwrap()).is_err());
        assert!(date("birth_date", NaiveDate::MIN).is_err());
        let edge = DateTime::parse_from_rfc3339("0001-01-01T00:30:00+01:00").unwrap();
        assert!(local_instant("sent_at", edge).is_err(), "its UTC instant is in year 0");
    }
}
