//! Ask: retrieve from the family's own entries (narrowed by the child and the
//! period the question names), answer grounded in them with numbered
//! citations, or say plainly that nothing was found.

use chrono::{DateTime, FixedOffset, NaiveTime, TimeZone, Utc};
use serde_json::json;

use crate::agent::{Agent, AgentError, Citation};
use crate::domain::*;
use crate::models::{ChatMessage, ChatRequest, Counted, SourceNote, Task};
use crate::text::{dates, is_korean, members, snippet, tokens};
use crate::trace::{RunType, Span};
use crate::vector::SearchFilter;

/// An answer and the entries it drew on.
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
    pub sources: Vec<Citation>,
}

/// The retrieval filter a question implies.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueryPlan {
    pub member_ids: Vec<MemberId>,
    pub range: Option<dates::DateRange>,
    /// Whether the question has words beyond names and time (if not, every
    /// entry passing the filter is relevant, whatever its score).
    pub has_content: bool,
    pub kind: QuestionKind,
}

/// What kind of answer a question wants, which decides how many entries it
/// draws on and in what order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuestionKind {
    /// The few most relevant entries.
    Lookup,
    /// Every relevant entry (bounded), oldest first: "how many times…".
    Count,
    /// The earliest relevant entry first: "when did she first…".
    First,
    /// The latest relevant entry first: "when was the last time…".
    Last,
}

/// Reads the kind of a question from its words (English and Korean).
pub(crate) fn question_kind(question: &str) -> QuestionKind {
    let t = question.to_lowercase();
    let words: Vec<&str> = t.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let has = |w: &str| words.contains(&w);
    if t.contains("how many") || t.contains("how often") || t.contains("몇 번") || t.contains("몇번") || t.contains("며칠") || t.contains("몇 회") {
        QuestionKind::Count
    } else if t.contains("last time") || t.contains("most recent") || has("latest") || t.contains("마지막") {
        QuestionKind::Last
    } else if has("first") || t.contains("처음") || t.contains("최초") || t.contains("첫 ") {
        QuestionKind::First
    } else {
        QuestionKind::Lookup
    }
}

fn plan_schema() -> crate::models::OutputSchema {
    crate::models::OutputSchema {
        name: "query_plan",
        schema: json!({
            "type": "object",
            "properties": {
                "search_text": { "type": "string" },
                "children": { "type": "array", "items": { "type": "string" } },
                "from": { "type": ["string", "null"] },
                "to": { "type": ["string", "null"] },
                "kind": { "type": "string", "enum": ["lookup", "period", "count", "first", "last"] },
            },
            "required": ["search_text", "children", "from", "to", "kind"],
            "additionalProperties": false,
        }),
    }
}

/// A model's plan, checked against the family and the calendar; `None` when
/// it does not hold together (the rule-based plan is used instead).
pub(crate) fn plan_from_model(v: &serde_json::Value, family: &[Member]) -> Option<(QueryPlan, String)> {
    let search_text = v["search_text"].as_str()?.trim().to_string();
    // A question's subject in a few words: a model that writes an essay (or
    // echoes a prompt) is not planning, and the text must fit one embedding.
    if search_text.chars().count() > MAX_PLANNED_TEXT_CHARS || search_text.contains('\0') {
        return None;
    }
    let mut member_ids = Vec::new();
    for name in v["children"].as_array()? {
        let name = name.as_str()?.trim().to_lowercase();
        let m = family.iter().find(|m| m.names().any(|n| n.to_lowercase() == name))?;
        if !member_ids.contains(&m.id) {
            member_ids.push(m.id);
        }
    }
    let day = |k: &str| -> Option<Option<chrono::NaiveDate>> {
        match &v[k] {
            serde_json::Value::Null => Some(None),
            serde_json::Value::String(s) => chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok().map(Some),
            _ => None,
        }
    };
    let range = match (day("from")?, day("to")?) {
        (Some(start), Some(end)) if start < end => Some(dates::DateRange { start, end }),
        (Some(start), None) => Some(dates::DateRange { start, end: start.checked_add_days(chrono::Days::new(1))? }),
        (None, None) => None,
        _ => return None,
    };
    let kind = match v["kind"].as_str()? {
        "count" => QuestionKind::Count,
        "first" => QuestionKind::First,
        "last" => QuestionKind::Last,
        "lookup" | "period" => QuestionKind::Lookup,
        _ => return None,
    };
    Some((QueryPlan { member_ids, range, has_content: !search_text.is_empty(), kind }, search_text))
}

/// The longest search text a planned question may have.
const MAX_PLANNED_TEXT_CHARS: usize = 500;

/// Questions about what no journal holds, and entries about everyday family
/// life: every pair is unrelated, so the closest pair marks how similar
/// unrelated texts look to this embedder (both languages, both roles).
const CALIBRATION_QUESTIONS: &[&str] = &[
    "What is the capital of Australia?",
    "How do I reset my router password?",
    "Which stocks did the pension fund buy?",
    "지난 분기 회사 매출은 얼마였나요?",
    "자동차 엔진 오일은 언제 갈아야 해?",
    "Who won the chess tournament in Oslo?",
];
const CALIBRATION_ENTRIES: &[&str] = &[
    "Minji lost her first tooth at breakfast and put it under her pillow.",
    "We went to the zoo and Junho fed the goats.",
    "Junho had a fever all night; we stayed home from daycare.",
    "She painted a dragon at school and brought it home.",
    "민지가 오늘 처음으로 자전거를 혼자 탔다.",
    "준호가 할머니 댁에서 김치전을 만들었다.",
    "Rainy Sunday: we built a pillow fort and read stories.",
    "우리는 바닷가에서 모래성을 쌓았다.",
];
/// How far above the closest unrelated pair a hit must score.
const CALIBRATION_MARGIN: f32 = 0.0;

/// The same everyday family moments in English and in Korean: the mean
/// difference of their embeddings is the embedder's language direction.
const LANGUAGE_PAIRS: &[(&str, &str)] = &[
    ("We had pancakes for breakfast this morning.", "오늘 아침에 팬케이크를 먹었다."),
    ("The baby slept through the night for the first time.", "아기가 처음으로 밤새 깨지 않고 잤다."),
    ("She drew a picture of our cat.", "그녀가 우리 고양이 그림을 그렸다."),
    ("He cried when we left the playground.", "놀이터를 떠날 때 그가 울었다."),
    ("Grandma visited and brought strawberries.", "할머니가 딸기를 가지고 오셨다."),
    ("We walked to the library in the rain.", "비 오는 날 도서관까지 걸어갔다."),
    ("He built a tower out of blocks.", "그가 블록으로 탑을 쌓았다."),
    ("She learned to tie her shoes.", "그녀가 신발 끈 묶는 법을 배웠다."),
    ("The kids watched fireworks by the river.", "아이들이 강가에서 불꽃놀이를 봤다."),
    ("He has a cough and a runny nose.", "그는 기침을 하고 콧물이 난다."),
    ("We planted tomatoes on the balcony.", "베란다에 토마토를 심었다."),
    ("She sang a song at the school festival.", "그녀가 학교 축제에서 노래를 불렀다."),
    ("What did we eat for dinner yesterday?", "어제 저녁에 뭐 먹었지?"),
    ("When did he go to the dentist?", "그가 치과에 간 게 언제야?"),
    ("How is the weather today?", "오늘 날씨 어때?"),
    ("The train was late again.", "기차가 또 늦었다."),
];

/// How far along the language direction the question moves for the search
/// in the other language: a little past halfway between the languages' means, where the
/// other language's entries come up in nearly their own order (measured on
/// `eval/` with e5: 0.5–0.8 is a plateau; 1.0 and more reorder them).
const LANGUAGE_SHIFT: f32 = 0.6;

/// The other-language search takes this many times `k`: among its results
/// the question's own language still comes first.
const CROSS_LANGUAGE_WIDTH: usize = 4;

/// How far (in cosine) an other-language hit must stand above the median of
/// the other-language hits to count, when there are enough to tell: an
/// entry that matches stands out from the rest of its language, while an
/// unanswerable question's best ones do not (e5 on `eval/`: 0.01–0.04 for
/// matches, mostly under 0.01 for unanswerable questions).
const CROSS_LANGUAGE_MIN_LEAD: f32 = 0.01;

/// What is measured once on the embedder.
#[derive(Debug, Clone)]
pub(crate) struct Calibration {
    /// Below this a hit is not relevant.
    pub floor: f32,
    /// Below this a hit of the other-language search is not relevant.
    pub cross_floor: f32,
    /// Korean minus English, the mean over `LANGUAGE_PAIRS`; none when the
    /// other-language search is off or could not be measured.
    pub language: Option<Vec<f32>>,
}

/// Of the other-language hits (in rank order), those that stand out from the
/// rest: with four or more, the ones at least `CROSS_LANGUAGE_MIN_LEAD` above
/// their median; with fewer there is no telling, and all stay.
pub(crate) fn standing_out(ids: &[EntryId], hits: &[crate::vector::Hit]) -> Vec<EntryId> {
    let scored: Vec<(EntryId, f32)> = ids.iter().filter_map(|id| hits.iter().find(|h| h.entry_id == *id).map(|h| (*id, h.score))).collect();
    if scored.len() < 4 {
        return scored.into_iter().map(|(id, _)| id).collect();
    }
    let mut scores: Vec<f32> = scored.iter().map(|(_, s)| *s).collect();
    scores.sort_by(|a, b| a.total_cmp(b));
    let median = scores[scores.len() / 2];
    scored.into_iter().filter(|(_, s)| *s >= median + CROSS_LANGUAGE_MIN_LEAD).map(|(id, _)| id).collect()
}

/// The question moved toward the other language: `query ± LANGUAGE_SHIFT·language`, unit length.
pub(crate) fn toward_other_language(query: &[f32], language: &[f32], korean: bool) -> Vec<f32> {
    let sign = if korean { -LANGUAGE_SHIFT } else { LANGUAGE_SHIFT };
    let mut v: Vec<f32> = query.iter().zip(language).map(|(q, l)| q + sign * l).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The share of a question's terms an entry must hold to count as a lexical match.
const LEXICAL_MIN_OVERLAP: f32 = 2.0 / 3.0;

/// The most entries a count draws on.
const COUNT_LIMIT: usize = 50;

pub(crate) fn plan(question: &str, family: &[Member], today: chrono::NaiveDate) -> QueryPlan {
    let member_ids = members::detect_members(question, family);
    let range = dates::resolve_range(question, today);
    let name_tokens: Vec<String> = family
        .iter()
        .filter(|m| member_ids.contains(&m.id))
        .flat_map(|m| m.names().flat_map(tokens::content_tokens).collect::<Vec<_>>())
        .collect();
    let has_content = tokens::content_tokens(question).iter().any(|t| {
        !name_tokens.iter().any(|n| t.starts_with(n.as_str()))
            && !t.chars().all(|c| c.is_ascii_digit())
            && !["월", "일", "년", "주"].iter().any(|u| t.chars().any(|c| c.is_ascii_digit()) && t.ends_with(u))
            && !MONTH_WORDS.contains(&t.as_str())
    });
    QueryPlan { member_ids, range, has_content, kind: question_kind(question) }
}

const MONTH_WORDS: &[&str] = &[
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "days", "past",
    "작년", "올해", "이번", "최근", "요즘", "지난", "저번", "winter", "spring", "summer", "autumn", "겨울", "봄", "여름", "가을",
    // The Korean period nouns a question's time is said with ("이번 달", "저번 주"),
    // as "month" and "week" are English stop words.
    "달", "주", "해", "이번달", "저번달", "이번주", "저번주",
];

/// The question without the named children's names (and their particles).
pub(crate) fn without_names(question: &str, family: &[Member], named: &[MemberId]) -> String {
    let names: Vec<String> = family.iter().filter(|m| named.contains(&m.id)).flat_map(|m| m.names().flat_map(tokens::words).collect::<Vec<_>>()).collect();
    if names.is_empty() {
        return question.to_string();
    }
    let kept: Vec<String> = tokens::words(question).into_iter().filter(|w| !names.iter().any(|n| w.starts_with(n.as_str()))).collect();
    if kept.is_empty() { question.to_string() } else { kept.join(" ") }
}

/// Whether a question leans on the one before it ("and what about Junho?",
/// "그럼 준호는?"): short, and opening or closing like a follow-up.
pub(crate) fn is_follow_up(question: &str) -> bool {
    let t = question.trim().to_lowercase();
    let words = t.split_whitespace().count();
    if words == 0 || words > 6 {
        return false;
    }
    let t = t.trim_end_matches(['?', '.', '!', '？']);
    ["and ", "what about", "how about", "and what about", "same for", "그럼", "그리고", "그러면"].iter().any(|p| t.starts_with(p))
        || (words <= 2 && (t.ends_with("은") || t.ends_with("는")))
        || t == "and"
}

/// The parent's previous question in this conversation, if it was recent and
/// was a question (not a note they recorded).
pub(crate) fn earlier_question(history: &[ChatTurn], now: DateTime<Utc>) -> Option<&str> {
    history
        .iter()
        .rev()
        .filter(|t| t.role == "user" && now - t.created_at <= chrono::Duration::minutes(30))
        .map(|t| t.content.trim())
        .find(|c| matches!(crate::text::route::route(c).0, crate::text::route::Intent::Ask))
}

/// A follow-up's plan: what the earlier question was about (its content,
/// kind and period), with the children and period the follow-up names.
pub(crate) fn follow_up_plan(now: &QueryPlan, earlier: &QueryPlan) -> QueryPlan {
    QueryPlan {
        member_ids: if now.member_ids.is_empty() { earlier.member_ids.clone() } else { now.member_ids.clone() },
        range: now.range.or(earlier.range),
        has_content: earlier.has_content,
        kind: if now.kind == QuestionKind::Lookup { earlier.kind } else { now.kind },
    }
}

/// A period's bound as an instant. No entry lies outside the years 1–9999,
/// so a bound past them is that edge: "the last 999999999 days" starts at
/// year 1, not in a year the database cannot store (Postgres' timestamps
/// begin in 4713 BC).
fn local_midnight(day: chrono::NaiveDate, offset: &FixedOffset) -> DateTime<Utc> {
    let first = chrono::NaiveDate::from_ymd_opt(crate::validate::MIN_YEAR, 1, 1).expect("a date");
    let past_last = chrono::NaiveDate::from_ymd_opt(crate::validate::MAX_YEAR + 1, 1, 1).expect("a date");
    let day = day.clamp(first, past_last);
    offset.from_local_datetime(&day.and_time(NaiveTime::MIN)).single().map(|t| t.to_utc()).unwrap_or_default()
}

/// The `[n]` citation numbers in an answer.
pub(crate) fn cited_numbers(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) => {
                for part in after[..close].split(',') {
                    if let Ok(n) = part.trim().parse::<usize>()
                        && !out.contains(&n)
                    {
                        out.push(n);
                    }
                }
                rest = &after[close..];
            }
            None => break,
        }
    }
    out
}

/// An answer's text, ending in "…" when the model stopped at its output
/// bound, so a parent sees it was cut rather than a sentence that just stops
/// (a streaming client gets the mark as the last piece).
fn cut_marked(done: crate::models::ChatCompletion, deltas: Option<&tokio::sync::mpsc::UnboundedSender<String>>) -> String {
    if !done.truncated {
        return done.content;
    }
    if done.streamed
        && let Some(deltas) = deltas
    {
        let _ = deltas.send("…".into());
    }
    format!("{}…", done.content)
}

/// Whether an answer cites at least one of its `n` sources.
fn grounded(text: &str, n: usize) -> bool {
    n == 0 || cited_numbers(text).iter().any(|c| (1..=n).contains(c))
}

/// Whether the model read the sources and found no answer in them: it cites
/// `[0]` ("no entry", as the prompt asks) and none of its `n` sources.
fn found_nothing(text: &str, n: usize) -> bool {
    let cited = cited_numbers(text);
    cited.contains(&0) && !cited.iter().any(|c| (1..=n).contains(c))
}

/// A "found nothing" answer without its `[0]` mark; the standard reply if
/// nothing else is left.
fn without_mark(text: &str, korean: bool, plan: &QueryPlan) -> String {
    let said = text.replace("[0]", "");
    let said = said.split_whitespace().collect::<Vec<_>>().join(" ");
    let said = [".", "!", "?", ",", "。", "、"].iter().fold(said, |t, p| t.replace(&format!(" {p}"), p));
    // Nothing but marks and punctuation left ("[0]。"): the standard reply.
    if !said.chars().any(char::is_alphanumeric) { nothing_found(korean, plan) } else { said }
}

fn nothing_found(korean: bool, plan: &QueryPlan) -> String {
    match (korean, plan.range.is_some()) {
        (true, true) => "그 기간의 일기에서는 관련된 기록을 찾지 못했어요.".into(),
        (true, false) => "일기에서 관련된 기록을 찾지 못했어요. 아직 기록하지 않은 일일 수도 있어요.".into(),
        (false, true) => "I couldn't find anything about that in your journal for that period.".into(),
        (false, false) => "I couldn't find anything about that in your journal — maybe it hasn't been recorded yet.".into(),
    }
}

impl Agent {
    /// What this embedder's scores mean, measured once on it: the similarity
    /// below which a hit is not relevant — the configured floor, or for a
    /// real embedder with none configured, the closest pair of unrelated
    /// question and entry plus a margin (e5 scores everything 0.7–0.9, so a
    /// fixed floor means nothing there) — and, with `cross_language`, its
    /// language direction and the floor of the other-language search (the
    /// closest unrelated pair across languages, the question moved).
    /// A measurement that fails is tried again on the next question.
    pub(crate) async fn calibration(&self) -> Calibration {
        let configured = Calibration { floor: self.settings.min_score, cross_floor: self.settings.min_score, language: None };
        if !self.settings.calibrate_min_score && !self.settings.cross_language {
            return configured;
        }
        let measured = self
            .calibration
            .get_or_try_init(|| async {
                let embed = |texts: Vec<&str>, prefix: &str, role| {
                    let texts: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
                    async move { self.b.embedder.embed(&texts, role).await }
                };
                let (query, passage) = (&self.settings.embed_query_prefix, &self.settings.embed_passage_prefix);
                let mut measured = configured.clone();
                // The unrelated pairs, only when the floor is to be measured.
                let unrelated = match self.settings.calibrate_min_score {
                    true => Some((
                        embed(CALIBRATION_QUESTIONS.to_vec(), query, crate::models::EmbedRole::Query).await?.vectors,
                        embed(CALIBRATION_ENTRIES.to_vec(), passage, crate::models::EmbedRole::Passage).await?.vectors,
                    )),
                    false => None,
                };
                if let Some((questions, entries)) = &unrelated {
                    let closest = questions.iter().flat_map(|q| entries.iter().map(move |e| crate::vector::cosine(q, e))).fold(f32::MIN, f32::max);
                    measured.floor = (closest + CALIBRATION_MARGIN).clamp(-1.0, 0.99);
                    measured.cross_floor = measured.floor;
                }
                if self.settings.cross_language {
                    let pairs = embed(LANGUAGE_PAIRS.iter().flat_map(|(en, ko)| [*en, *ko]).collect(), passage, crate::models::EmbedRole::Passage).await?.vectors;
                    let dims = pairs.first().map(Vec::len).unwrap_or_default();
                    let mut language = vec![0f32; dims];
                    for pair in pairs.chunks(2) {
                        if let [en, ko] = pair {
                            language.iter_mut().zip(en.iter().zip(ko)).for_each(|(l, (e, k))| *l += (k - e) / LANGUAGE_PAIRS.len() as f32);
                        }
                    }
                    // The floor across languages: the closest unrelated pair, the question moved.
                    if let Some((questions, entries)) = &unrelated {
                        let across = |(q, qt): (&Vec<f32>, &&str)| {
                            let moved = toward_other_language(q, &language, crate::text::is_korean(qt));
                            entries
                                .iter()
                                .zip(CALIBRATION_ENTRIES)
                                .filter(|(_, et)| crate::text::is_korean(et) != crate::text::is_korean(qt))
                                .map(|(e, _)| crate::vector::cosine(&moved, e))
                                .fold(f32::MIN, f32::max)
                        };
                        let closest_across = questions.iter().zip(CALIBRATION_QUESTIONS).map(across).fold(f32::MIN, f32::max);
                        measured.cross_floor = (closest_across + CALIBRATION_MARGIN).clamp(-1.0, 0.99);
                    }
                    measured.language = Some(language);
                }
                tracing::info!(
                    model = self.b.embedder.model_name(),
                    floor = measured.floor,
                    cross_floor = measured.cross_floor,
                    cross_language = measured.language.is_some(),
                    "similarity floor measured on the embedder"
                );
                Ok::<Calibration, crate::models::ModelError>(measured)
            })
            .await;
        match measured {
            Ok(c) => c.clone(),
            Err(e) => {
                tracing::warn!(error = %e, "could not measure the embedder; using the configured floor and one search");
                configured
            }
        }
    }

    /// One structured-output call that turns the question into a search plan,
    /// traced as its own run; `None` offline, or when the model fails or
    /// answers with something that does not hold together.
    async fn plan_with_model(
        &self,
        family_id: FamilyId,
        question: &str,
        earlier: Option<&str>,
        family: &[Member],
        sent_at: DateTime<FixedOffset>,
        parent: &Span,
    ) -> Option<(QueryPlan, String)> {
        if self.b.chat.provider() == "offline" {
            return None;
        }
        let children = family.iter().map(|m| m.names().collect::<Vec<_>>().join(" / ")).collect::<Vec<_>>().join("; ");
        let today = sent_at.format("%Y-%m-%d (%A)").to_string();
        let earlier = earlier.unwrap_or("(none)");
        let (system, user) = self.prompts.plan.render(&[("today", &today), ("children", &children), ("earlier", earlier), ("question", question)]).ok()?;
        let span = parent.child("plan_query", RunType::Chain, json!({ "question": question, "earlier": earlier }));
        let request = ChatRequest {
            task: Task::Plan { question: question.to_string() },
            messages: vec![ChatMessage::system(system), ChatMessage::user(user)],
            schema: Some(plan_schema()),
            temperature: 0.0,
            deltas: None,
        };
        let planned = match self.call_chat(family_id, &span, "plan", &request).await {
            Ok(done) => super::parse_json(&done.content).ok().and_then(|v| plan_from_model(&v, family)),
            Err(_) => None,
        };
        match &planned {
            Some((p, text)) => span.end(json!({ "search_text": text, "member_ids": p.member_ids, "range": p.range.map(|r| json!({ "from": r.start, "to": r.end })), "kind": format!("{:?}", p.kind).to_lowercase() })),
            None => span.fail("no usable plan; using the rules"),
        }
        planned
    }

    pub(crate) async fn answer_in(
        &self,
        user: &User,
        question: &str,
        sent_at: DateTime<FixedOffset>,
        history: &[ChatTurn],
        parent: &Span,
    ) -> Result<Answer, AgentError> {
        let korean = is_korean(question);
        let family = self.b.store.list_members(user.family_id).await?;
        // History only resolves references ("and what about Junho?"): the
        // earlier question lends its subject; earlier answers are never shown
        // to the model, which would copy them instead of reading the sources.
        let earlier = if is_follow_up(question) { earlier_question(history, sent_at.to_utc()) } else { None };
        let today = sent_at.date_naive();
        let (rules, rules_text) = match earlier {
            Some(before) => {
                let resolved = follow_up_plan(&plan(question, &family, today), &plan(before, &family, today));
                let subject = without_names(before, &family, &members::detect_members(before, &family));
                (resolved, Some(subject))
            }
            None => (plan(question, &family, today), None),
        };
        // A real chat model plans the search (text, children, period, kind) in
        // one structured call; the rules are the offline path and the fallback.
        let (plan, planned_text) = match self.plan_with_model(user.family_id, question, earlier, &family, sent_at, parent).await {
            Some((p, text)) => (p, Some(text)),
            None => (rules, rules_text),
        };
        let filter = SearchFilter {
            member_ids: plan.member_ids.clone(),
            from: plan.range.map(|r| local_midnight(r.start, sent_at.offset())),
            to: plan.range.map(|r| local_midnight(r.end, sent_at.offset())),
        };

        let mut retriever = parent.child(
            "retrieve",
            RunType::Retriever,
            json!({ "query": question, "member_ids": filter.member_ids, "from": filter.from, "to": filter.to }),
        );
        // The child filter already selects by name; leaving names in the query
        // would make every entry about that child look similar to it.
        let query_text = match planned_text.filter(|t| !t.is_empty()) {
            Some(t) => t,
            None => without_names(question, &family, &plan.member_ids),
        };
        let searched_text = query_text.clone();
        let query_text = format!("{}{query_text}", self.settings.embed_query_prefix);
        let embedded = match self.call_embed(user.family_id, &retriever, vec![query_text], crate::models::EmbedRole::Query).await {
            Ok(e) => e,
            Err(e) => {
                retriever.fail(&e.to_string());
                return Err(AgentError::Unavailable(Box::new(e)));
            }
        };
        let query = embedded.vectors.into_iter().next().unwrap_or_default();
        let k = if plan.kind == QuestionKind::Count { COUNT_LIMIT.max(self.settings.retrieve_k) } else { self.settings.retrieve_k };
        let hits = match self.b.index.search(user.family_id, &query, &filter, k).await {
            Ok(h) => h,
            Err(e) => {
                retriever.fail(&e.to_string());
                return Err(AgentError::Unavailable(Box::new(e)));
            }
        };
        let filtered_only = !plan.has_content && (!plan.member_ids.is_empty() || plan.range.is_some());
        let calibration = self.calibration().await;
        let floor = calibration.floor;
        retriever.metadata("min_score", json!(floor));
        // The other language's entries, searched for on their own: a
        // multilingual embedder ranks any entry in the question's language
        // above a matching one in the other, so one search seldom reaches them.
        let cross_hits = match &calibration.language {
            Some(language) if plan.has_content && !filtered_only => {
                let moved = toward_other_language(&query, language, korean);
                match self.b.index.search(user.family_id, &moved, &filter, k * CROSS_LANGUAGE_WIDTH).await {
                    Ok(found) => found,
                    Err(e) => {
                        tracing::warn!(error = %e, "the other-language search failed; answering from the first");
                        Vec::new()
                    }
                }
            }
            _ => Vec::new(),
        };
        // A count over a period also takes the entries whose insight shares the
        // question's topic ("sick" ↔ an entry about a fever, in either language),
        // not only those worded like the question.
        // When some of them do, the count is over those alone: an entry that
        // merely clears the similarity floor is not one more time ("how many
        // times was Junho sick" is not answered by the cat being fed), and a
        // multilingual embedder puts every entry of the question's language
        // over the floor.
        // A feeling the question counts ("how many nightmares": sleep and fear;
        // "how many times did he cry": sadness) narrows the topic's entries to
        // those that carry it too, or stands for the topic when there is none.
        let counting = plan.kind == QuestionKind::Count && plan.range.is_some();
        let wanted = if counting { crate::text::lexicon::topics(question) } else { Vec::new() };
        let felt = if counting { crate::text::lexicon::emotions(question) } else { Vec::new() };
        let labels: Vec<(Option<String>, Option<String>)> = match (wanted.is_empty(), felt.is_empty()) {
            (true, true) => Vec::new(),
            (false, true) => wanted.iter().map(|t| (Some(t.clone()), None)).collect(),
            (true, false) => felt.iter().map(|e| (None, Some(e.clone()))).collect(),
            (false, false) => wanted.iter().flat_map(|t| felt.iter().map(move |e| (Some(t.clone()), Some(e.clone())))).collect(),
        };
        // Read from the store by label and period, not picked from the
        // nearest hits: a year of daily notes holds more than the search returns.
        // Each child named is asked for on its own: the store's limit then
        // applies to that child's entries, not to the whole family's (another
        // child's many fevers must not crowd out the ones asked about).
        let children: Vec<Option<MemberId>> = match plan.member_ids.is_empty() {
            true => vec![None],
            false => plan.member_ids.iter().copied().map(Some).collect(),
        };
        let mut found: Vec<(DateTime<Utc>, EntryId)> = Vec::new();
        for (topic, emotion) in &labels {
            for child in &children {
                // One more than a count draws on, to know when there are more.
                let f = EntryFilter { member_id: *child, from: filter.from, to: filter.to, topic: topic.clone(), emotion: emotion.clone(), before: None, limit: (k + 1) as u32 };
                for e in self.b.store.list_entries(user.family_id, &f).await? {
                    if !found.iter().any(|(_, id)| *id == e.id) {
                        found.push((e.occurred_at, e.id));
                    }
                }
            }
        }
        // More than a count draws on: the newest are kept, and the answer says "more than".
        found.sort_by(|a, b| b.cmp(a));
        let by_topic = !found.is_empty();
        let more_than_listed = found.len() > k;
        let topical: Vec<EntryId> = found.into_iter().take(k).map(|(_, id)| id).collect();
        retriever.metadata("counted_by_topic", json!(by_topic.then_some(&wanted)));
        retriever.metadata("counted_by_emotion", json!(by_topic.then_some(&felt)));
        // Counted by topic: the hits about it in their order, then the rest of them.
        let mut dense: Vec<EntryId> = hits.iter().filter(|h| if by_topic { topical.contains(&h.entry_id) } else { filtered_only || h.score >= floor }).map(|h| h.entry_id).collect();
        if by_topic {
            for id in &topical {
                if !dense.contains(id) {
                    dense.push(*id);
                }
            }
        }
        // The lexical index beside the vectors: entries sharing at least two
        // thirds of the question's terms, fused with the dense ranking (RRF). Fusion,
        // not filtering: an entry in another language still comes through the vectors.
        // (Counted by topic, what shares the question's words is no more times.)
        let terms = if plan.has_content && !by_topic && self.settings.lexical_weight > 0.0 { crate::text::lexical::terms(&searched_text) } else { Vec::new() };
        // (Kept beside the vectors when the index can — Qdrant's sparse vectors — else in the store.)
        let searched = match terms.is_empty() {
            true => Ok(Vec::new()),
            false => match self.b.index.lexical_search(user.family_id, &terms, &filter, k).await {
                Ok(Some(found)) => Ok(found),
                Ok(None) => self.b.store.lexical_search(user.family_id, &terms, filter.from, filter.to, k).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        let lexical_hits = searched.unwrap_or_else(|e| {
            // The vectors still answer; the lexical side is an improvement, not a dependency.
            tracing::warn!(error = %e, "lexical search failed; answering from the vectors alone");
            Vec::new()
        });
        let lexical_ids: Vec<EntryId> = lexical_hits.iter().map(|h| h.entry_id).collect();
        // (Counted by topic, the store gave every entry about it, in either language.)
        // An entry the first search also found stays in this ranking too: fusion
        // then rewards the two searches' agreement, so an other-language answer
        // the first search ranked behind its own language's entries comes first.
        let cross_ids: Vec<EntryId> = cross_hits.iter().filter(|h| !by_topic && h.score >= calibration.cross_floor).map(|h| h.entry_id).collect();
        let mut ids: Vec<EntryId> = Vec::with_capacity(dense.len() + lexical_ids.len() + cross_ids.len());
        for id in dense.iter().chain(&lexical_ids).chain(&cross_ids) {
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
        // Fetched through the family again: the index's answer is never trusted across families.
        let mut entries = self.b.store.get_entries(user.family_id, &ids).await?;
        entries.retain(|e| e.family_id == user.family_id);
        // About a child asked about, or about none in particular (the whole family), as the index filters.
        let about_children = |e: &Entry| filter.admits(&e.member_ids);
        // (Overlap is counted on the terms the entry is indexed under: its text and its photos' descriptions.)
        let overlap = |id: &EntryId| lexical_hits.iter().find(|h| h.entry_id == *id).map(|h| crate::text::lexical::overlap(&terms, &h.terms));
        let lexical: Vec<EntryId> = lexical_ids
            .iter()
            .filter(|id| {
                entries.iter().any(|e| {
                    e.id == **id
                        && about_children(e)
                        && overlap(id).is_some_and(|o| o >= LEXICAL_MIN_OVERLAP)
                })
            })
            .copied()
            .collect();
        let dense_ranked: Vec<EntryId> = if by_topic { dense.clone() } else { hits.iter().map(|h| h.entry_id).filter(|id| dense.contains(id)).collect() };
        // (Of the other-language search, only what is in the other language: the rest the first search ranked.)
        let cross: Vec<EntryId> = cross_ids
            .iter()
            .filter(|id| entries.iter().any(|e| e.id == **id && crate::text::is_korean(&e.raw_text) != korean && about_children(e)))
            .copied()
            .collect();
        let cross = standing_out(&cross, &cross_hits);
        let fused = crate::text::lexical::fuse(&[
            (self.settings.dense_weight, &dense_ranked[..]),
            (self.settings.dense_weight, &cross[..]),
            (self.settings.lexical_weight, &lexical[..]),
        ]);
        let limit = if plan.kind == QuestionKind::Count { k } else { self.settings.retrieve_k };
        let mut ranked: Vec<(Entry, f32)> = fused
            .iter()
            .take(limit)
            .filter_map(|(id, _)| {
                let e = entries.iter().find(|e| e.id == *id)?;
                // The score shown is the vector similarity, or for an entry only
                // the lexical side found, the share of the question's terms it holds.
                let score = hits
                    .iter()
                    .chain(&cross_hits)
                    .find(|h| h.entry_id == *id)
                    .map(|h| h.score)
                    .unwrap_or_else(|| overlap(id).unwrap_or_default());
                Some((e.clone(), score))
            })
            .collect();
        retriever.metadata("lexical_hits", json!(lexical.len()));
        retriever.metadata("other_language_hits", json!(cross.len()));
        // The question's kind orders what was found: by date for first/last
        // time and counts, newest first for a bare period, else by relevance.
        match plan.kind {
            QuestionKind::First | QuestionKind::Count => ranked.sort_by_key(|(e, _)| e.occurred_at),
            QuestionKind::Last => ranked.sort_by_key(|(e, _)| std::cmp::Reverse(e.occurred_at)),
            QuestionKind::Lookup if filtered_only => ranked.sort_by_key(|(e, _)| std::cmp::Reverse(e.occurred_at)),
            QuestionKind::Lookup => {}
        }
        retriever.metadata("filtered_only", json!(filtered_only));
        if let Some(before) = earlier {
            retriever.metadata("follows_up", json!(before));
        }
        retriever.metadata("question_kind", json!(format!("{:?}", plan.kind).to_lowercase()));
        retriever.end(json!({
            "documents": ranked.iter().map(|(e, s)| json!({
                "entry_id": e.id, "score": s, "occurred_at": e.occurred_at, "page_content": e.raw_text,
            })).collect::<Vec<_>>(),
        }));

        if ranked.is_empty() {
            return Ok(Answer { text: nothing_found(korean, &plan), sources: Vec::new() });
        }

        let notes: Vec<SourceNote> = ranked
            .iter()
            .enumerate()
            .map(|(i, (e, _))| SourceNote {
                n: i + 1,
                date: e.occurred_at.with_timezone(sent_at.offset()).format("%Y-%m-%d").to_string(),
                text: e.raw_text.clone(),
            })
            .collect();
        let prompt = &self.prompts.answer;
        let sources_text = notes.iter().map(|n| format!("[{}] ({}) {}", n.n, n.date, n.text)).collect::<Vec<_>>().join("\n");
        let today = sent_at.format("%Y-%m-%d (%A)").to_string();
        let language = if korean { "Korean" } else { "English" };
        let span = parent.child("answer_prompt", RunType::Prompt, json!({ "name": prompt.name, "version": prompt.version }));
        // A follow-up is answered as the question it stands for.
        let mut asked = match earlier {
            Some(before) => format!("{question}\n(This follows the parent's earlier question: \"{before}\")"),
            None => question.to_string(),
        };
        // A count over its topic is answered by counting: the sources are every
        // entry about it in the period, in date order. (Without a topic they are
        // only what cleared the floor, which is no count.)
        let counted = match by_topic {
            false => None,
            true if more_than_listed => Some(Counted::MoreThan(notes.len())),
            true => Some(Counted::All),
        };
        match counted {
            Some(Counted::All) => asked.push_str("\n(The entries above are every entry found about this in that period, oldest first: count those that answer the question.)"),
            Some(Counted::MoreThan(n)) => asked.push_str(&format!(
                "\n(The journal has more than {n} entries about this in that period; the entries above are {n} of them, oldest first: say there were more than {n}.)"
            )),
            None => {}
        }
        let (system, user_text) = prompt
            .render(&[("language", language), ("today", &today), ("sources", &sources_text), ("question", &asked)])
            .expect("answer placeholders are tested");
        span.end(json!({ "system": system, "user": user_text }));
        let messages = vec![ChatMessage::system(system), ChatMessage::user(user_text)];
        let deltas = crate::agent::ANSWER_DELTAS.try_with(|d| d.clone()).ok();
        let request = ChatRequest { task: Task::Answer { question: question.to_string(), sources: notes.clone(), korean, counted }, messages, schema: None, temperature: 0.2, deltas };
        let quote = |request: &ChatRequest| {
            let offline = crate::models::OfflineModels::chat();
            let request = ChatRequest { deltas: None, ..request.clone() };
            async move { crate::models::ChatModel::complete(&offline, &request).await.map(|c| c.content).unwrap_or_default() }
        };
        // The model may find that the sources, though the nearest, do not answer
        // the question (an embedder ranks something first for any question):
        // then the answer is that the journal has nothing about it, with no sources.
        let mut model_found_nothing = false;
        let text = match self.call_chat(user.family_id, parent, "answer", &request).await {
            Ok(done) if found_nothing(&done.content, notes.len()) => {
                model_found_nothing = true;
                done.content
            }
            Ok(done) if grounded(&done.content, notes.len()) => cut_marked(done, request.deltas.as_ref()),
            Ok(done) => {
                // Sources were given and none is cited: ask once more, plainly;
                // if that is still uncited, quote the entries instead.
                let check = parent.child("citation_check", RunType::Chain, json!({ "answer": done.content, "sources": notes.len() }));
                let mut again = request.clone();
                again.deltas = None;
                again.messages.push(ChatMessage::assistant(&done.content));
                again.messages.push(ChatMessage::user(if korean {
                    "위 답에는 출처 번호가 없어요. 번호가 붙은 일기만 근거로, 사실마다 [1]처럼 번호를 달아 다시 답해 주세요. 일기에 답이 없다면 그렇다고만 말하고 [0]으로 끝내 주세요."
                } else {
                    "That answer cites no entry. Answer again from the numbered entries only, citing each fact like [1]; if they do not answer the question, say only that, ending with [0]."
                }));
                match self.call_chat(user.family_id, &check, "answer_reask", &again).await {
                    Ok(second) if found_nothing(&second.content, notes.len()) => {
                        check.end(json!({ "outcome": "found_nothing" }));
                        model_found_nothing = true;
                        second.content
                    }
                    Ok(second) if grounded(&second.content, notes.len()) => {
                        check.end(json!({ "outcome": "reasked" }));
                        cut_marked(second, None)
                    }
                    _ => {
                        check.end(json!({ "outcome": "quoted" }));
                        self.b.metrics.inc("dadly_uncited_answers_total", &[]);
                        quote(&request).await
                    }
                }
            }
            Err(e) => {
                // The model is down: still show what the journal says, and say why.
                tracing::warn!(error = %e, "answer model failed; quoting entries instead");
                let quoted = quote(&request).await;
                let note = if korean { "(지금은 언어 모델에 연결할 수 없어요.)" } else { "(The language model is unavailable right now.)" };
                format!("{quoted}\n{note}")
            }
        };
        if model_found_nothing {
            parent.child("found_nothing", RunType::Parser, json!({ "answer": text, "sources": notes.len() })).end(json!({ "sources_kept": 0 }));
            self.b.metrics.inc("dadly_answers_found_nothing_total", &[]);
            return Ok(Answer { text: without_mark(&text, korean, &plan), sources: Vec::new() });
        }
        // An answer may also say what the entries do not hold, marked "no entry".
        let text = text.replace(" [0]", "").replace("[0]", "");
        let cited = cited_numbers(&text);
        let sources = ranked
            .iter()
            .enumerate()
            .map(|(i, (e, score))| Citation {
                entry_id: e.id,
                occurred_at: e.occurred_at,
                snippet: snippet(&e.raw_text, 160),
                score: *score,
                cited: cited.contains(&(i + 1)),
            })
            .collect();
        Ok(Answer { text, sources })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use uuid::Uuid;

    #[test]
    fn other_language_hits_count_when_they_stand_out_from_the_rest() {
        let ids: Vec<EntryId> = (0..6).map(|_| Uuid::now_v7()).collect();
        let hit = |i: usize, score: f32| crate::vector::Hit { entry_id: ids[i], score };
        // A match stands out from the rest of its language.
        let hits = vec![hit(0, 0.84), hit(1, 0.795), hit(2, 0.79), hit(3, 0.79), hit(4, 0.78)];
        assert_eq!(standing_out(&ids[..5], &hits), vec![ids[0]]);
        // An unanswerable question's best ones do not.
        let flat = vec![hit(0, 0.80), hit(1, 0.80), hit(2, 0.795), hit(3, 0.79), hit(4, 0.79)];
        assert!(standing_out(&ids[..5], &flat).is_empty());
        // Too few to tell: all stay.
        assert_eq!(standing_out(&ids[..2], &hits), ids[..2].to_vec());
        // An id the search did not return has no score and is left out.
        assert_eq!(standing_out(&ids[4..], &hits), vec![ids[4]]);
    }

    #[test]
    fn the_moved_question_is_unit_length_and_nearer_the_other_language() {
        // Dimension 0 is Korean, 1 English; the question is Korean.
        let language = [0.8, -0.8, 0.0];
        let question = [0.6, 0.0, 0.8];
        let english_entry = [0.0, 0.6, 0.8];
        let moved = toward_other_language(&question, &language, true);
        assert!((moved.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(crate::vector::cosine(&moved, &english_entry) > crate::vector::cosine(&question, &english_entry));
        // An English question moves the other way.
        let back = toward_other_language(&english_entry, &language, false);
        assert!(crate::vector::cosine(&back, &question) > crate::vector::cosine(&english_entry, &question));
    }

    fn kid(name: &str, alias: &str) -> Member {
        Member { id: Uuid::now_v7(), family_id: Uuid::nil(), name: name.into(), aliases: vec![alias.into()], birth_date: None, created_at: Utc::now(), age_notice_at: None }
    }

    #[test]
    fn questions_plan_child_period_and_content() {
        let minji = kid("Minji", "민지");
        let fam = vec![minji.clone(), kid("Junho", "준호")];
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let p = plan("What did Minji do last month?", &fam, today);
        assert_eq!(p.member_ids, vec![minji.id]);
        assert!(p.range.is_some());
        assert!(!p.has_content, "names and time only: {p:?}");
        let p = plan("When did Minji lose her first tooth?", &fam, today);
        assert!(p.has_content && p.range.is_none());
        let p = plan("민지 10월에 뭐 했지?", &fam, today);
        assert_eq!(p.member_ids, vec![minji.id]);
        assert!(!p.has_content, "{p:?}");
        for question in ["이번 달에 민지는 뭐 했어?", "저번 주에 민지 뭐 했지?", "이번달 민지는?"] {
            let p = plan(question, &fam, today);
            assert!(p.range.is_some() && !p.has_content, "a Korean period noun is time, not content: {question} {p:?}");
        }
        let p = plan("How many times was Junho sick this winter?", &fam, today);
        assert_eq!((p.kind, p.has_content), (QuestionKind::Count, true), "{p:?}");
        assert!(p.range.is_some());
    }

    #[test]
    fn a_models_plan_is_checked_against_the_family_and_the_calendar() {
        let minji = kid("Minji", "민지");
        let fam = vec![minji.clone(), kid("Junho", "준호")];
        let ok = json!({ "search_text": "zoo", "children": ["민지"], "from": "2025-06-01", "to": "2025-09-01", "kind": "last" });
        let (p, text) = plan_from_model(&ok, &fam).unwrap();
        assert_eq!((p.member_ids, p.kind, text.as_str()), (vec![minji.id], QuestionKind::Last, "zoo"));
        assert_eq!(p.range.unwrap().start, NaiveDate::from_ymd_opt(2025, 6, 1).unwrap());
        // Hangul, CJK punctuation and emoji pass through; the calendar's last day has a next day.
        let ko = json!({ "search_text": "동물원。🦒", "children": [], "from": "9999-12-31", "to": null, "kind": "period" });
        let (p, text) = plan_from_model(&ko, &fam).unwrap();
        assert_eq!((text.as_str(), p.kind), ("동물원。🦒", QuestionKind::Lookup));
        assert!(p.range.is_some());
        for bad in [
            json!({ "search_text": "zoo", "children": ["Sora"], "from": null, "to": null, "kind": "lookup" }),
            json!({ "search_text": "zoo", "children": [], "from": "2025-09-01", "to": "2025-06-01", "kind": "lookup" }),
            json!({ "search_text": "zoo", "children": [], "from": "last summer", "to": null, "kind": "lookup" }),
            json!({ "search_text": "zoo", "children": [], "from": null, "to": null, "kind": "guess" }),
            json!({ "children": [], "from": null, "to": null, "kind": "lookup" }),
            json!({ "search_text": "zoo ".repeat(200), "children": [], "from": null, "to": null, "kind": "lookup" }),
            json!({ "search_text": "z\u{0}oo", "children": [], "from": null, "to": null, "kind": "lookup" }),
            json!({ "search_text": "zoo", "children": [], "from": "99999-01-01", "to": null, "kind": "lookup" }),
        ] {
            assert!(plan_from_model(&bad, &fam).is_none(), "{bad}");
        }
    }

    #[test]
    fn question_kinds_are_read_in_both_languages() {
        for (q, kind) in [
            ("How many times was Junho sick this winter?", QuestionKind::Count),
            ("How often did we go to the zoo?", QuestionKind::Count),
            ("2024년 겨울에 준호가 몇 번 아팠어?", QuestionKind::Count),
            ("When was the last time we went to the zoo?", QuestionKind::Last),
            ("동물원에 마지막으로 간 게 언제야?", QuestionKind::Last),
            ("When did Minji first ride without training wheels?", QuestionKind::First),
            ("준호가 처음 걸은 날", QuestionKind::First),
            ("What did Minji do last month?", QuestionKind::Lookup),
            ("When did Minji lose her tooth?", QuestionKind::Lookup),
        ] {
            assert_eq!(question_kind(q), kind, "{q}");
        }
    }

    #[test]
    fn names_are_left_out_of_the_query_text() {
        let junho = kid("Junho", "준호");
        let fam = vec![junho.clone()];
        assert_eq!(without_names("What did Junho eat at the zoo?", &fam, &[junho.id]), "what did eat at the zoo");
        assert_eq!(without_names("준호가 뭐 먹었지?", &fam, &[junho.id]), "뭐 먹었지");
        assert_eq!(without_names("What did Junho eat?", &fam, &[]), "What did Junho eat?");
    }

    #[test]
    fn a_follow_up_borrows_the_earlier_questions_subject_and_names_its_own_child() {
        for q in ["and what about Junho?", "What about Junho?", "그럼 준호는?", "준호는?", "How about last summer?"] {
            assert!(is_follow_up(q), "{q}");
        }
        for q in ["What did Junho do at the zoo?", "준호가 뭐 했어?", "and then we went to the zoo and the park and the beach all day"] {
            assert!(!is_follow_up(q), "{q}");
        }
        let now = Utc::now();
        let turn = |role: &str, content: &str, ago: i64| ChatTurn { chat_id: "c".into(), role: role.into(), content: content.into(), created_at: now - chrono::Duration::minutes(ago) };
        let history = vec![
            turn("user", "What did Minji eat at the zoo?", 50),
            turn("assistant", "Ice cream [1]", 50),
            turn("user", "When did Minji lose her tooth?", 5),
            turn("assistant", "On Nov 20 [1]", 5),
            turn("user", "Minji planted tomatoes today", 2),
            turn("assistant", "Saved", 2),
        ];
        assert_eq!(earlier_question(&history, now), Some("When did Minji lose her tooth?"), "the latest question, not a note");
        assert_eq!(earlier_question(&history[..2], now), None, "too long ago");
        let minji = kid("Minji", "민지");
        let junho = kid("Junho", "준호");
        let fam = vec![minji.clone(), junho.clone()];
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let resolved = follow_up_plan(&plan("and what about Junho?", &fam, today), &plan("How many times was Minji sick this winter?", &fam, today));
        assert_eq!((resolved.member_ids, resolved.kind, resolved.has_content), (vec![junho.id], QuestionKind::Count, true));
        assert!(resolved.range.is_some(), "the earlier period carries over");
    }

    #[test]
    fn an_answer_citing_only_no_entry_found_nothing() {
        let plan = QueryPlan { member_ids: vec![], range: None, has_content: true, kind: QuestionKind::Lookup };
        assert!(found_nothing("Nothing about a violin in your journal [0].", 3));
        assert!(!found_nothing("She played piano [1]; nothing about a violin [0].", 3), "an entry cited: an answer");
        assert!(!found_nothing("Nothing here.", 3), "no mark: uncited, asked again");
        assert!(found_nothing("일기에 바이올린 이야기는 없어요 [0]", 2));
        assert_eq!(without_mark("Nothing about a violin in your journal [0].", false, &plan), "Nothing about a violin in your journal.");
        assert_eq!(without_mark("[0]", true, &plan), nothing_found(true, &plan));
        assert_eq!(without_mark(" [0] . ", false, &plan), nothing_found(false, &plan));
        assert_eq!(without_mark("[0]。", true, &plan), nothing_found(true, &plan), "CJK punctuation alone is no reply");
        assert_eq!(without_mark("일기에 없어요 [0]。", true, &plan), "일기에 없어요。");
    }

    #[test]
    fn an_answer_is_grounded_when_it_cites_one_of_its_sources() {
        assert!(grounded("Ice cream [2].", 2));
        assert!(!grounded("Ice cream.", 2));
        assert!(!grounded("Ice cream [7].", 2), "a number no source has");
        assert!(grounded("Nothing found.", 0));
    }

    #[test]
    fn citation_numbers_are_read_from_brackets() {
        assert_eq!(cited_numbers("She lost it on Nov 20 [1], and again [2][1]. Also [3, 4]."), vec![1, 2, 3, 4]);
        assert!(cited_numbers("no citations [x]").is_empty());
    }
}
