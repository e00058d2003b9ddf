//! When a capsule opens, from what the parent wrote: "on Minji's 18th
//! birthday", "when she turns 20", "in 10 years", "2036-03-14", "18번째
//! 생일에", "스무 살이 되면"… Calendar arithmetic is checked: nothing here panics.

use std::sync::LazyLock;

use chrono::{Datelike, Months, NaiveDate};
use regex::Regex;

use crate::domain::Member;
use crate::text::dates;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("capsule date patterns are valid")
}

static BIRTHDAY: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{1,3})(?:st|nd|rd|th)\s+birthday\b|(\d{1,3})\s*(?:번째|살)\s*생일"));
static TURNS: LazyLock<Regex> = LazyLock::new(|| re(r"\bturns?\s+(\d{1,3})\b|\bwhen\s+(?:she|he|they)(?:'s| is| are)\s+(\d{1,3})\b|(\d{1,3})\s*살이\s*되(?:면|는)"));
static IN_YEARS: LazyLock<Regex> = LazyLock::new(|| re(r"\bin\s+(\d{1,3})\s+years?\b|(\d{1,3})\s*년\s*(?:후|뒤)"));

/// The day `years` after `day` (29 February moves to 28 February in common years).
fn years_after(day: NaiveDate, years: u32) -> Option<NaiveDate> {
    day.checked_add_months(Months::new(years.checked_mul(12)?))
}

/// The opening day a message names, if any and if it is after `today`.
pub fn opening_date(text: &str, child: Option<&Member>, today: NaiveDate) -> Option<NaiveDate> {
    let t = text.to_lowercase();
    let born = child.and_then(|c| c.birth_date);
    let number = |c: &regex::Captures| -> Option<u32> { c.iter().skip(1).flatten().next()?.as_str().parse().ok() };
    let day = if let Some(c) = BIRTHDAY.captures(&t).or_else(|| TURNS.captures(&t)) {
        years_after(born?, number(&c)?)
    } else if let Some(c) = IN_YEARS.captures(&t) {
        years_after(today, number(&c)?)
    } else {
        dates::explicit_date(&t, today).filter(|d| *d > today).or_else(|| future_date(&t))
    }?;
    (day > today).then_some(day)
}

/// An explicit future date with a year ("March 14, 2036", "2036-03-14").
fn future_date(t: &str) -> Option<NaiveDate> {
    static ISO: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"));
    let c = ISO.captures(t)?;
    NaiveDate::from_ymd_opt(c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?)
}

/// The child's age on `day`, when their birth date is known.
pub fn age_on(child: &Member, day: NaiveDate) -> Option<i32> {
    let born = child.birth_date?;
    let mut age = day.year() - born.year();
    if (day.month(), day.day()) < (born.month(), born.day()) {
        age -= 1;
    }
    Some(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minji(born: Option<NaiveDate>) -> Member {
        Member { id: uuid::Uuid::nil(), family_id: uuid::Uuid::nil(), name: "Minji".into(), aliases: vec![], birth_date: born, created_at: chrono::Utc::now(), age_notice_at: None }
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn openings_resolve_from_birthdays_ages_spans_and_dates() {
        let today = d(2026, 11, 27);
        let child = minji(Some(d(2018, 3, 14)));
        let c = Some(&child);
        assert_eq!(opening_date("Open this on Minji's 18th birthday", c, today), Some(d(2036, 3, 14)));
        assert_eq!(opening_date("민지 18번째 생일에 열어줘", c, today), Some(d(2036, 3, 14)));
        assert_eq!(opening_date("for when she turns 20", c, today), Some(d(2038, 3, 14)));
        assert_eq!(opening_date("스무 살 대신 20살이 되면 열기", c, today), Some(d(2038, 3, 14)));
        assert_eq!(opening_date("open in 10 years", c, today), Some(d(2036, 11, 27)));
        assert_eq!(opening_date("10년 후에 열어", c, today), Some(d(2036, 11, 27)));
        assert_eq!(opening_date("open on 2030-01-01", c, today), Some(d(2030, 1, 1)));
        assert_eq!(opening_date("open on 2030년 1월 1일", c, today), Some(d(2030, 1, 1)));
    }

    #[test]
    fn past_unknown_or_impossible_openings_are_none() {
        let today = d(2026, 11, 27);
        let child = minji(Some(d(2018, 3, 14)));
        assert_eq!(opening_date("on her 5th birthday", Some(&child), today), None, "already past");
        assert_eq!(opening_date("on her 18th birthday", Some(&minji(None)), today), None, "no birth date known");
        assert_eq!(opening_date("open on 2020-01-01", Some(&child), today), None);
        assert_eq!(opening_date("open someday", Some(&child), today), None);
        assert_eq!(opening_date("in 999 years", Some(&child), NaiveDate::MAX), None, "checked arithmetic");
        assert_eq!(age_on(&child, d(2036, 3, 13)), Some(17));
        assert_eq!(age_on(&child, d(2036, 3, 14)), Some(18));
    }
}
