//! When things happened: resolves the day a statement is about ("yesterday",
//! "어제", "last Sunday", "October 3") and the period a question asks about
//! ("last month", "지난주", "in October"), relative to the message's local date.

use std::sync::LazyLock;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use regex::Regex;

/// A half-open range of local dates: `start <= d < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl DateRange {
    /// A season: winter runs from December of `year` into February; spring
    /// March–May, summer June–August, autumn September–November.
    fn season(year: i32, season: Season) -> Option<Self> {
        let (month, months) = match season {
            Season::Winter => (12, 3),
            Season::Spring => (3, 3),
            Season::Summer => (6, 3),
            Season::Autumn => (9, 3),
        };
        let start = NaiveDate::from_ymd_opt(year, month, 1)?;
        Some(Self { start, end: start.checked_add_months(Months::new(months))? })
    }
    fn day(d: NaiveDate) -> Option<Self> {
        Some(Self { start: d, end: after(d, 1)? })
    }
    fn month(year: i32, month: u32) -> Option<Self> {
        let start = NaiveDate::from_ymd_opt(year, month, 1)?;
        Some(Self { start, end: start.checked_add_months(Months::new(1))? })
    }
    fn year(year: i32) -> Option<Self> {
        Some(Self { start: NaiveDate::from_ymd_opt(year, 1, 1)?, end: NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)? })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Season {
    Winter,
    Spring,
    Summer,
    Autumn,
}

/// The season a question names: "this winter", "last summer", "the winter of
/// 2024-2025", "2024년 겨울", "작년 여름". A bare or "this" season is the
/// latest one that has begun; "last" the one before it; a year names the
/// season that starts in it (winter: its December).
fn season_range(t: &str, today: NaiveDate) -> Option<DateRange> {
    let c = SEASON.captures(t)?;
    // "Junho had a fall" is no season: "fall" needs "this", "last" or a year.
    if c.get(2).is_some_and(|m| m.as_str() == "fall") && c.get(1).is_none() && c.get(3).is_none() {
        return None;
    }
    let season = match c.get(2).or(c.get(6))?.as_str() {
        "winter" | "겨울" => Season::Winter,
        "spring" | "봄" => Season::Spring,
        "summer" | "여름" => Season::Summer,
        _ => Season::Autumn,
    };
    if let Some(y) = c.get(3).or(c.get(4)) {
        return DateRange::season(y.as_str().parse().ok()?, season);
    }
    // The latest season of that kind that has begun by today.
    let this_year = DateRange::season(today.year(), season)?;
    let latest = if this_year.start <= today { today.year() } else { today.year().checked_sub(1)? };
    let which = c.get(1).or(c.get(5)).map(|m| m.as_str());
    let year = match which {
        Some("last" | "past" | "지난" | "저번") => latest.checked_sub(1)?,
        Some("작년") => today.year().checked_sub(1)?,
        Some("올해") => today.year(),
        _ => latest,
    };
    DateRange::season(year, season)
}

// Every step in calendar arithmetic is checked: a parent may write
// "999999999 days ago", and a client may send a `sent_at` near the calendar's
// ends. Out of range means "no date", never a panic.

/// `n` days before `d`, if that is a date.
fn before(d: NaiveDate, n: u64) -> Option<NaiveDate> {
    d.checked_sub_days(Days::new(n))
}

/// `n` days after `d`, if that is a date.
fn after(d: NaiveDate, n: u64) -> Option<NaiveDate> {
    d.checked_add_days(Days::new(n))
}

/// `n` weeks (or days) as days, if that fits.
fn days_of(n: u64, weeks: bool) -> Option<u64> {
    if weeks { n.checked_mul(7) } else { Some(n) }
}

const MONTHS: &str = "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?";
const WEEKDAYS: &str = "monday|tuesday|wednesday|thursday|friday|saturday|sunday";

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("date patterns are valid")
}

static ISO: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"));
static MONTH_DAY: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"\b({MONTHS})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}}))?")));
static DAY_MONTH: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({MONTHS})\b(?:,?\s+(\d{{4}}))?")));
static KO_FULL: LazyLock<Regex> = LazyLock::new(|| re(r"(\d{4})\s*년\s*(\d{1,2})\s*월\s*(\d{1,2})\s*일"));
static KO_MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| re(r"(\d{1,2})\s*월\s*(\d{1,2})\s*일"));
static AGO: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten)\s+(day|week)s?\s+ago\b")
});
static KO_AGO: LazyLock<Regex> = LazyLock::new(|| re(r"(\d+|일|이|삼|사|오|한|두|세|네)\s*(일|주|주일)\s*전"));
static LAST_WEEKDAY: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"\blast\s+({WEEKDAYS})\b")));
static ON_WEEKDAY: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"\b(?:on\s+|this\s+(?:past\s+)?)?({WEEKDAYS})\b")));
static KO_LAST_WEEK_WEEKDAY: LazyLock<Regex> = LazyLock::new(|| re(r"지난\s*주\s*([월화수목금토일])요일"));
static KO_LAST_WEEKDAY: LazyLock<Regex> = LazyLock::new(|| re(r"지난\s*([월화수목금토일])요일"));
static KO_WEEKDAY: LazyLock<Regex> = LazyLock::new(|| re(r"([월화수목금토일])요일"));
static IN_MONTH: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"\b(?:in|during|of|since)\s+({MONTHS})\b(?:\s+(\d{{4}}))?")));
static MONTH_YEAR: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"\b({MONTHS})\s+(\d{{4}})\b")));
static KO_MONTH: LazyLock<Regex> = LazyLock::new(|| re(r"(?:(\d{4})\s*년\s*)?(\d{1,2})\s*월(?:\s*\d)?"));
/// A month with a year said in words: "작년 5월", "올해 3월에", "May last year",
/// "in March of this year", "last May", "this March".
static KO_RELATIVE_MONTH: LazyLock<Regex> = LazyLock::new(|| re(r"(작년|올해|지난해|재작년)\s*(\d{1,2})\s*월(?:\s*(\d{1,2})\s*일)?"));
static EN_RELATIVE_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(r"\b(?:({MONTHS})\s+(?:of\s+)?(last|this)\s+year|(last|this)\s+({MONTHS}))\b"))
});
static IN_YEAR: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:in|during)\s+(\d{4})\b|(\d{4})\s*년"));
static SEASON: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(?:(this|last|past)\s+)?(winter|spring|summer|autumn|fall)\b(?:\s+(?:of\s+)?(\d{4})\b(?:\s*[-/–]\s*\d{2,4})?)?|(?:(\d{4})\s*년\s*|(지난|작년|올해|이번|저번)\s*)?(겨울|봄|여름|가을)")
});
static LAST_N_DAYS: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:last|past)\s+(\d+)\s+days\b|최근\s*(\d+)\s*일"));

fn month_number(name: &str) -> Option<u32> {
    let m = match &name[..3.min(name.len())] {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    Some(m)
}

fn weekday_en(name: &str) -> Option<Weekday> {
    name.parse().ok()
}

fn weekday_ko(c: &str) -> Option<Weekday> {
    Some(match c {
        "월" => Weekday::Mon,
        "화" => Weekday::Tue,
        "수" => Weekday::Wed,
        "목" => Weekday::Thu,
        "금" => Weekday::Fri,
        "토" => Weekday::Sat,
        "일" => Weekday::Sun,
        _ => return None,
    })
}

fn small_number(word: &str) -> Option<u64> {
    Some(match word {
        "a" | "an" | "one" | "일" | "한" => 1,
        "two" | "이" | "두" => 2,
        "three" | "삼" | "세" => 3,
        "four" | "사" | "네" => 4,
        "five" | "오" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        n => n.parse().ok()?,
    })
}

/// A date without a year is this year's, or last year's when that would be in the future.
fn without_year(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    let this_year = NaiveDate::from_ymd_opt(today.year(), month, day)?;
    if this_year > today { NaiveDate::from_ymd_opt(today.year().checked_sub(1)?, month, day) } else { Some(this_year) }
}

/// The most recent `weekday` strictly before `today`.
fn previous(today: NaiveDate, weekday: Weekday) -> Option<NaiveDate> {
    let back = (today.weekday().num_days_from_monday() + 7 - weekday.num_days_from_monday()) % 7;
    before(today, if back == 0 { 7 } else { u64::from(back) })
}

/// The most recent `weekday` on or before `today`.
fn on_or_before(today: NaiveDate, weekday: Weekday) -> Option<NaiveDate> {
    let back = (today.weekday().num_days_from_monday() + 7 - weekday.num_days_from_monday()) % 7;
    before(today, u64::from(back))
}

fn week_start(d: NaiveDate) -> Option<NaiveDate> {
    before(d, u64::from(d.weekday().num_days_from_monday()))
}

pub(crate) fn explicit_date(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    if let Some(c) = ISO.captures(text) {
        return NaiveDate::from_ymd_opt(c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?);
    }
    if let Some(c) = KO_FULL.captures(text) {
        return NaiveDate::from_ymd_opt(c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?);
    }
    if let Some(c) = KO_MONTH_DAY.captures(text) {
        return without_year(today, c[1].parse().ok()?, c[2].parse().ok()?);
    }
    for (regex, month_group, day_group) in [(&*MONTH_DAY, 1, 2), (&*DAY_MONTH, 2, 1)] {
        if let Some(c) = regex.captures(text) {
            let month = month_number(&c[month_group])?;
            let day = c[day_group].parse().ok()?;
            return match c.get(3) {
                Some(y) => NaiveDate::from_ymd_opt(y.as_str().parse().ok()?, month, day),
                None => without_year(today, month, day),
            };
        }
    }
    None
}

/// The day a statement is about, if the text says; `None` means "the day it was sent".
pub fn resolve_date(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    let t = text.to_lowercase();
    if let Some(d) = explicit_date(&t, today) {
        return Some(d);
    }
    if t.contains("day before yesterday") || t.contains("그저께") || t.contains("그제") || t.contains("엊그제") {
        return before(today, 2);
    }
    if t.contains("yesterday") || t.contains("last night") || t.contains("어제") || t.contains("어젯") || t.contains("어저께") {
        return before(today, 1);
    }
    if t.contains("tomorrow") || t.contains("내일") {
        return after(today, 1);
    }
    if let Some(c) = AGO.captures(&t) {
        let n = small_number(&c[1])?;
        return before(today, days_of(n, &c[2] == "week")?);
    }
    if let Some(c) = KO_AGO.captures(&t) {
        let n = small_number(&c[1])?;
        return before(today, days_of(n, c[2].starts_with('주'))?);
    }
    if t.contains("일주일 전") {
        return before(today, 7);
    }
    if let Some(c) = KO_LAST_WEEK_WEEKDAY.captures(&t) {
        let wd = weekday_ko(&c[1])?;
        return after(before(week_start(today)?, 7)?, u64::from(wd.num_days_from_monday()));
    }
    if let Some(c) = LAST_WEEKDAY.captures(&t) {
        return previous(today, weekday_en(&c[1])?);
    }
    if let Some(c) = KO_LAST_WEEKDAY.captures(&t) {
        return previous(today, weekday_ko(&c[1])?);
    }
    if let Some(c) = ON_WEEKDAY.captures(&t) {
        return on_or_before(today, weekday_en(&c[1])?);
    }
    if let Some(c) = KO_WEEKDAY.captures(&t) {
        return on_or_before(today, weekday_ko(&c[1])?);
    }
    if t.contains("last week") || t.contains("지난주") || t.contains("지난 주") {
        return before(today, 7);
    }
    None
}

/// The period a question asks about, if it names one.
pub fn resolve_range(text: &str, today: NaiveDate) -> Option<DateRange> {
    let t = text.to_lowercase();
    let tomorrow = after(today, 1)?;
    if let Some(c) = LAST_N_DAYS.captures(&t) {
        let n: u64 = c.get(1).or(c.get(2))?.as_str().parse().ok()?;
        // "the last 999999999 days" means everything up to today.
        let start = before(tomorrow, n.max(1)).unwrap_or(NaiveDate::MIN);
        return Some(DateRange { start, end: tomorrow });
    }
    if t.contains("last month") || t.contains("지난달") || t.contains("지난 달") || t.contains("저번 달") || t.contains("저번달") {
        let prev = today.checked_sub_months(Months::new(1))?;
        return DateRange::month(prev.year(), prev.month());
    }
    if t.contains("this month") || t.contains("이번 달") || t.contains("이번달") {
        return DateRange::month(today.year(), today.month()).map(|r| DateRange { end: tomorrow, ..r });
    }
    // "지난주 일요일" names a day, not the week: leave it to resolve_date below.
    if (t.contains("last week") || t.contains("지난주") || t.contains("지난 주") || t.contains("저번 주") || t.contains("저번주"))
        && !KO_LAST_WEEK_WEEKDAY.is_match(&t)
    {
        let start = before(week_start(today)?, 7)?;
        return Some(DateRange { start, end: after(start, 7)? });
    }
    if t.contains("this week") || t.contains("이번 주") || t.contains("이번주") {
        return Some(DateRange { start: week_start(today)?, end: tomorrow });
    }
    if let Some(r) = season_range(&t, today) {
        return Some(r);
    }
    if let Some(r) = relative_month(&t, today) {
        return Some(r);
    }
    if t.contains("last year") || t.contains("작년") {
        return DateRange::year(today.year().checked_sub(1)?);
    }
    if t.contains("this year") || t.contains("올해") {
        return DateRange::year(today.year()).map(|r| DateRange { end: tomorrow, ..r });
    }
    if let Some(d) = explicit_date(&t, today) {
        return DateRange::day(d);
    }
    if let Some(c) = IN_MONTH.captures(&t).or_else(|| MONTH_YEAR.captures(&t)) {
        let month = month_number(c.get(1)?.as_str())?;
        return month_range(today, month, c.get(2).and_then(|y| y.as_str().parse().ok()));
    }
    if let Some(c) = KO_MONTH.captures(&t) {
        // "10월 3일" was taken above as a date; a digit right after 월 means a day.
        if !c[0].chars().last().is_some_and(|ch| ch.is_ascii_digit()) {
            let month = c[2].parse().ok()?;
            return month_range(today, month, c.get(1).and_then(|y| y.as_str().parse().ok()));
        }
    }
    if let Some(c) = IN_YEAR.captures(&t) {
        let year = c.get(1).or(c.get(2))?.as_str().parse().ok()?;
        return DateRange::year(year);
    }
    resolve_date(&t, today).and_then(DateRange::day)
}

/// A month whose year is said in words ("작년 5월", "May last year", "last
/// May"). "last May" is the latest May before this month, as an unqualified
/// month is; "this May" is this year's.
fn relative_month(t: &str, today: NaiveDate) -> Option<DateRange> {
    if let Some(c) = KO_RELATIVE_MONTH.captures(t) {
        let month: u32 = c[2].parse().ok()?;
        let year = match &c[1] {
            "올해" => today.year(),
            "재작년" => today.year().checked_sub(2)?,
            _ => today.year().checked_sub(1)?,
        };
        // "작년 10월 3일" is a day.
        return match c.get(3).and_then(|d| d.as_str().parse().ok()) {
            Some(day) => DateRange::day(NaiveDate::from_ymd_opt(year, month, day)?),
            None => DateRange::month(year, month),
        };
    }
    let c = EN_RELATIVE_MONTH.captures(t)?;
    let (month, which) = match (c.get(1), c.get(2), c.get(3), c.get(4)) {
        (Some(m), Some(w), _, _) => (month_number(m.as_str())?, w.as_str()),
        (_, _, Some(w), Some(m)) => (month_number(m.as_str())?, w.as_str()),
        _ => return None,
    };
    match (which, c.get(1).is_some()) {
        // "this may be silly, but…" is no month.
        ("this", false) if month == 5 => None,
        ("this", _) => DateRange::month(today.year(), month),
        ("last", true) => DateRange::month(today.year().checked_sub(1)?, month),
        // "last May": the latest May before this month.
        _ => {
            let year = if month >= today.month() { today.year().checked_sub(1)? } else { today.year() };
            DateRange::month(year, month)
        }
    }
}

fn month_range(today: NaiveDate, month: u32, year: Option<i32>) -> Option<DateRange> {
    let year = match year {
        Some(y) => y,
        None if month > today.month() => today.year().checked_sub(1)?,
        None => today.year(),
    };
    DateRange::month(year, month)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thursday, 26 November 2026.
    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn range(a: NaiveDate, b: NaiveDate) -> Option<DateRange> {
        Some(DateRange { start: a, end: b })
    }

    #[test]
    fn statements_resolve_relative_days_in_english() {
        assert_eq!(resolve_date("Minji lost her first tooth today", today()), None);
        assert_eq!(resolve_date("Yesterday Junho rode his bike", today()), Some(d(2026, 11, 25)));
        assert_eq!(resolve_date("the day before yesterday we baked", today()), Some(d(2026, 11, 24)));
        assert_eq!(resolve_date("three days ago she sang", today()), Some(d(2026, 11, 23)));
        assert_eq!(resolve_date("2 weeks ago we moved", today()), Some(d(2026, 11, 12)));
        assert_eq!(resolve_date("Last Sunday we went to the zoo", today()), Some(d(2026, 11, 22)));
        assert_eq!(resolve_date("last thursday", today()), Some(d(2026, 11, 19)));
        assert_eq!(resolve_date("On Tuesday she cried", today()), Some(d(2026, 11, 24)));
    }

    #[test]
    fn seasons_resolve_to_their_months() {
        // Today: 26 November 2026.
        let winter = |y: i32| range(d(y, 12, 1), d(y + 1, 3, 1));
        assert_eq!(resolve_range("How many times was Junho sick in the winter of 2024-2025?", today()), winter(2024));
        assert_eq!(resolve_range("2024년 겨울에 준호가 몇 번 아팠어?", today()), winter(2024));
        assert_eq!(resolve_range("was she sick this winter?", today()), winter(2025), "the latest winter that has begun");
        assert_eq!(resolve_range("last winter", today()), winter(2024));
        assert_eq!(resolve_range("What did we do last summer?", today()), range(d(2025, 6, 1), d(2025, 9, 1)));
        assert_eq!(resolve_range("what did we do this summer", today()), range(d(2026, 6, 1), d(2026, 9, 1)));
        assert_eq!(resolve_range("작년 여름에 뭐 했지?", today()), range(d(2025, 6, 1), d(2025, 9, 1)));
        assert_eq!(resolve_range("지난 가을", today()), range(d(2025, 9, 1), d(2025, 12, 1)));
        assert_eq!(resolve_range("in the spring of 2026", today()), range(d(2026, 3, 1), d(2026, 6, 1)));
        assert_eq!(resolve_range("She likes the summer heat", d(2026, 3, 1)), range(d(2025, 6, 1), d(2025, 9, 1)));
        assert_eq!(resolve_range("winter of 99999", today()), winter(2025), "not year 9999: a bare winter");
        assert_eq!(season_range("winter 9999", d(9999, 12, 31)), range(d(9999, 12, 1), d(10000, 3, 1)));
        assert_eq!(resolve_range("When did Junho have a fall at the playground?", today()), None);
        assert_eq!(resolve_range("last fall", today()), range(d(2025, 9, 1), d(2025, 12, 1)));
    }

    #[test]
    fn statements_resolve_explicit_dates() {
        assert_eq!(resolve_date("On October 3 she walked", today()), Some(d(2026, 10, 3)));
        assert_eq!(resolve_date("on 3rd of march 2025 he was born", today()), Some(d(2025, 3, 3)));
        assert_eq!(resolve_date("Dec 24 we sang", today()), Some(d(2025, 12, 24)));
        assert_eq!(resolve_date("2026-09-01 first day of school", today()), Some(d(2026, 9, 1)));
    }

    #[test]
    fn statements_resolve_korean_days() {
        assert_eq!(resolve_date("준호가 어제 처음 자전거를 탔다", today()), Some(d(2026, 11, 25)));
        assert_eq!(resolve_date("그저께 민지가 울었어", today()), Some(d(2026, 11, 24)));
        assert_eq!(resolve_date("3일 전에 병원에 갔다", today()), Some(d(2026, 11, 23)));
        assert_eq!(resolve_date("지난주 일요일에 동물원에 갔다", today()), Some(d(2026, 11, 22)));
        assert_eq!(resolve_date("지난주 월요일", today()), Some(d(2026, 11, 16)));
        assert_eq!(resolve_date("10월 3일에 걸었다", today()), Some(d(2026, 10, 3)));
        assert_eq!(resolve_date("2025년 3월 3일", today()), Some(d(2025, 3, 3)));
        assert_eq!(resolve_date("오늘 민지가 이가 빠졌다", today()), None);
    }

    #[test]
    fn questions_resolve_periods_in_english() {
        assert_eq!(resolve_range("What did Minji do last month?", today()), range(d(2026, 10, 1), d(2026, 11, 1)));
        assert_eq!(resolve_range("what happened last week", today()), range(d(2026, 11, 16), d(2026, 11, 23)));
        assert_eq!(resolve_range("Anything in October?", today()), range(d(2026, 10, 1), d(2026, 11, 1)));
        assert_eq!(resolve_range("in december", today()), range(d(2025, 12, 1), d(2026, 1, 1)));
        assert_eq!(resolve_range("what did we do yesterday", today()), range(d(2026, 11, 25), d(2026, 11, 26)));
        assert_eq!(resolve_range("in the last 7 days", today()), range(d(2026, 11, 20), d(2026, 11, 27)));
        assert_eq!(resolve_range("When did Minji lose her first tooth?", today()), None);
    }

    #[test]
    fn questions_resolve_periods_in_korean() {
        assert_eq!(resolve_range("지난주에 준호 뭐 했지?", today()), range(d(2026, 11, 16), d(2026, 11, 23)));
        assert_eq!(resolve_range("지난달 민지는?", today()), range(d(2026, 10, 1), d(2026, 11, 1)));
        assert_eq!(resolve_range("10월에 무슨 일 있었지?", today()), range(d(2026, 10, 1), d(2026, 11, 1)));
        assert_eq!(resolve_range("10월 3일에 뭐 했어?", today()), range(d(2026, 10, 3), d(2026, 10, 4)));
        assert_eq!(resolve_range("작년에", today()), range(d(2025, 1, 1), d(2026, 1, 1)));
        // A month with its year in words.
        assert_eq!(resolve_range("작년 5월에 하늘이 뭐 했어?", today()), range(d(2025, 5, 1), d(2025, 6, 1)));
        assert_eq!(resolve_range("올해 3월에 뭐 했지?", today()), range(d(2026, 3, 1), d(2026, 4, 1)));
        assert_eq!(resolve_range("재작년 12월", today()), range(d(2024, 12, 1), d(2025, 1, 1)));
        assert_eq!(resolve_range("What did we do in May last year?", today()), range(d(2025, 5, 1), d(2025, 6, 1)));
        assert_eq!(resolve_range("in March of this year", today()), range(d(2026, 3, 1), d(2026, 4, 1)));
        assert_eq!(resolve_range("What did Minji do last May?", today()), range(d(2026, 5, 1), d(2026, 6, 1)));
        assert_eq!(resolve_range("What did Minji do last December?", today()), range(d(2025, 12, 1), d(2026, 1, 1)));
        assert_eq!(resolve_range("this may sound odd, but when did she swim?", today()), None);
        assert_eq!(resolve_range("작년 10월 3일", today()), DateRange::day(d(2025, 10, 3)));
        assert_eq!(resolve_range("준호 자전거 언제 탔지?", today()), None);
    }

    #[test]
    fn impossible_dates_are_ignored() {
        assert_eq!(resolve_date("on february 31", today()), None);
        assert_eq!(resolve_date("2026-13-45", today()), None);
    }
}
