//! The offline fallback, used when no model server is configured. It is
//! deterministic and clearly labelled: the embedder hashes words and character
//! n-grams (useful for lexical overlap in Korean and English, not semantics);
//! the chat model routes, annotates and answers with keyword rules and quotes
//! entries instead of writing prose.

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::text::{lexicon, snippet, tokens};

/// Dimensions of the offline embedding.
pub const OFFLINE_DIMENSIONS: usize = 512;

/// Constructors for the offline capabilities.
pub struct OfflineModels;

impl OfflineModels {
    pub fn chat() -> OfflineChat {
        OfflineChat
    }
    pub fn embedder() -> OfflineEmbedder {
        OfflineEmbedder
    }
    pub fn transcriber() -> NoTranscriber {
        NoTranscriber
    }
}

pub struct OfflineChat;
pub struct OfflineEmbedder;
/// No speech-to-text without a server: voice notes wait for one.
pub struct NoTranscriber;

impl Described for OfflineChat {
    fn provider(&self) -> &'static str {
        "offline"
    }
    fn model_name(&self) -> &str {
        "dadly-offline-rules-v1"
    }
}

impl Described for OfflineEmbedder {
    fn provider(&self) -> &'static str {
        "offline"
    }
    fn model_name(&self) -> &str {
        "dadly-offline-ngram-512-v1"
    }
}

impl Described for NoTranscriber {
    fn provider(&self) -> &'static str {
        "none"
    }
    fn model_name(&self) -> &str {
        "none"
    }
}

#[async_trait]
impl Transcriber for NoTranscriber {
    async fn transcribe(&self, _audio: Vec<u8>, _filename: &str) -> Result<String, ModelError> {
        Err(ModelError::NotConfigured("speech-to-text"))
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

fn add_feature(v: &mut [f32], feature: &str, weight: f32) {
    let h = fnv1a(feature.as_bytes());
    let i = (h % v.len() as u64) as usize;
    v[i] += if h >> 63 == 0 { weight } else { -weight };
}

/// The offline embedding of one text: signed feature hashing of content words,
/// Hangul syllable bigrams and Latin character trigrams, L2-normalised.
pub fn embed_text(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; OFFLINE_DIMENSIONS];
    for token in tokens::content_tokens(text) {
        add_feature(&mut v, &format!("w:{token}"), 1.0);
        let chars: Vec<char> = token.chars().collect();
        if chars.iter().any(|c| tokens::is_hangul(*c)) {
            for c in &chars {
                add_feature(&mut v, &format!("s:{c}"), 0.3);
            }
            for pair in chars.windows(2) {
                add_feature(&mut v, &format!("b:{}{}", pair[0], pair[1]), 0.6);
            }
        } else if chars.len() >= 3 {
            let padded: Vec<char> = std::iter::once('<').chain(chars.iter().copied()).chain(std::iter::once('>')).collect();
            for tri in padded.windows(3) {
                add_feature(&mut v, &format!("t:{}", tri.iter().collect::<String>()), 0.4);
            }
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[async_trait]
impl Embedder for OfflineEmbedder {
    fn dimensions(&self) -> usize {
        OFFLINE_DIMENSIONS
    }

    async fn embed(&self, texts: &[String], _role: EmbedRole) -> Result<Embeddings, ModelError> {
        Ok(Embeddings { vectors: texts.iter().map(|t| embed_text(t)).collect(), model: self.model_name().into(), usage: None })
    }
}

fn first_sentence(text: &str) -> String {
    // Up to and including the first sentence mark, which may be several bytes long (`。`).
    let end = text
        .char_indices()
        .find(|(_, c)| matches!(c, '.' | '!' | '?' | '\n' | '。' | '！' | '？'))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(text.len());
    snippet(&text[..end], 140)
}

/// The most entries a counting answer lists one by one.
const COUNT_LISTED: usize = 10;

fn offline_answer(question: &str, sources: &[SourceNote], korean: bool, counted: Option<Counted>) -> String {
    let _ = question;
    if sources.is_empty() {
        return if korean {
            "일기에서 관련된 기록을 찾지 못했어요.".into()
        } else {
            "I couldn't find anything about that in your journal.".into()
        };
    }
    // A count says how many, then lists them (in date order, as given).
    let (mut out, listed) = match (counted, korean) {
        (Some(Counted::MoreThan(n)), true) => (format!("일기에서 {n}번 넘게 찾았어요. 그중 일부예요:\n"), COUNT_LISTED),
        (Some(Counted::MoreThan(n)), false) => (format!("More than {n} times in your journal; some of them:\n"), COUNT_LISTED),
        (Some(Counted::All), true) => (format!("일기에서 {}번 찾았어요:\n", sources.len()), COUNT_LISTED),
        (Some(Counted::All), false) if sources.len() == 1 => ("Once in your journal:\n".to_string(), COUNT_LISTED),
        (Some(Counted::All), false) => (format!("{} times in your journal:\n", sources.len()), COUNT_LISTED),
        (None, true) => ("일기에서 찾은 기록이에요:\n".to_string(), 3),
        (None, false) => ("Here is what your journal says:\n".to_string(), 3),
    };
    for s in sources.iter().take(listed) {
        out.push_str(&format!("• {} — {} [{}]\n", s.date, snippet(&s.text, 200), s.n));
    }
    if counted.is_some() && sources.len() > listed {
        let more = sources.len() - listed;
        out.push_str(&if korean { format!("… 그리고 {more}번 더\n") } else { format!("… and {more} more\n") });
    }
    out.push_str(if korean {
        "(오프라인 모드: 언어 모델이 설정되지 않아 가장 가까운 기록을 그대로 보여드려요.)"
    } else {
        "(Offline mode: no language model is configured, so these are the closest entries, quoted as written.)"
    });
    out
}

#[async_trait]
impl ChatModel for OfflineChat {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatCompletion, ModelError> {
        let content = match &request.task {
            Task::Route { message } => {
                let asks = message.contains('?')
                    || ["언제", "뭐", "어디", "누가", "왜", "어떻게", "몇"].iter().any(|q| message.contains(q));
                json!({ "kind": if asks { "ask" } else { "record" } }).to_string()
            }
            Task::Enrich { text, member_names } => {
                let lower = text.to_lowercase();
                let members: Vec<&String> = member_names.iter().filter(|n| lower.contains(&n.to_lowercase())).collect();
                json!({
                    "summary": first_sentence(text),
                    "topics": lexicon::topics(text),
                    "emotions": lexicon::emotions(text),
                    "members": members,
                })
                .to_string()
            }
            Task::Answer { question, sources, korean, counted } => offline_answer(question, sources, *korean, *counted),
            // The rule-based planner is the offline path; asked anyway, plan nothing special.
            Task::Plan { question } => serde_json::json!({ "search_text": question, "children": [], "from": null, "to": null, "kind": "lookup" }).to_string(),
            Task::Describe { .. } => return Err(ModelError::NotConfigured("a vision model")),
        };
        Ok(ChatCompletion { content, model: self.model_name().into(), usage: None, streamed: false, truncated: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::cosine;

    #[test]
    fn offline_embedding_is_deterministic_and_normalised() {
        let a = embed_text("Minji lost her first tooth today");
        assert_eq!(a, embed_text("Minji lost her first tooth today"));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
        assert!(embed_text("").iter().all(|x| *x == 0.0));
    }

    #[test]
    fn offline_embedding_ranks_lexical_overlap_first_in_both_languages() {
        let tooth = embed_text("Minji lost her first tooth today");
        let bike = embed_text("Junho rode his bike without training wheels");
        let q = embed_text("When did Minji lose her first tooth?");
        assert!(cosine(&q, &tooth) > cosine(&q, &bike) + 0.2);

        let ko_bike = embed_text("준호가 어제 처음 자전거를 탔다");
        let ko_tooth = embed_text("민지가 오늘 이가 빠졌다");
        let ko_q = embed_text("준호 자전거 언제 탔지?");
        assert!(cosine(&ko_q, &ko_bike) > cosine(&ko_q, &ko_tooth) + 0.2);
    }

    #[test]
    fn a_counting_answer_says_how_many_and_lists_up_to_ten() {
        let notes = |n: usize| (1..=n).map(|i| SourceNote { n: i, date: format!("2026-01-{i:02}"), text: format!("fever {i}") }).collect::<Vec<_>>();
        let twelve = offline_answer("How many times was Junho sick this winter?", &notes(12), false, Some(Counted::All));
        assert!(twelve.starts_with("12 times in your journal:\n") && twelve.contains("[10]") && !twelve.contains("[11]") && twelve.contains("… and 2 more"), "{twelve}");
        assert!(offline_answer("how many times?", &notes(1), false, Some(Counted::All)).starts_with("Once in your journal:"));
        assert!(offline_answer("몇 번 아팠어?", &notes(3), true, Some(Counted::All)).starts_with("일기에서 3번 찾았어요:"));
        // Not a count: the three closest, and no number.
        let quoted = offline_answer("what happened?", &notes(12), false, None);
        assert!(quoted.starts_with("Here is what your journal says:") && quoted.contains("[3]") && !quoted.contains("[4]"), "{quoted}");
        // More than were drawn on: no exact number is claimed.
        let many = offline_answer("How many times did we play?", &notes(12), false, Some(Counted::MoreThan(12)));
        assert!(many.starts_with("More than 12 times in your journal; some of them:") && !many.contains("12 times in your journal:"), "{many}");
        assert!(offline_answer("몇 번 놀았어?", &notes(12), true, Some(Counted::MoreThan(12))).starts_with("일기에서 12번 넘게 찾았어요."));
    }

    #[tokio::test]
    async fn offline_enrichment_returns_schema_shaped_json() {
        let req = ChatRequest {
            task: Task::Enrich { text: "Minji laughed at the zoo. Then we ate.".into(), member_names: vec!["Minji".into(), "Junho".into()] },
            messages: vec![],
            schema: None,
            temperature: 0.0,
            deltas: None,
        };
        let out = OfflineChat.complete(&req).await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&out.content).unwrap();
        assert_eq!(v["summary"], "Minji laughed at the zoo.");
        assert_eq!(v["members"], json!(["Minji"]));
        assert_eq!(v["topics"], json!(["food", "outing"]));
        assert_eq!(v["emotions"], json!(["joy"]));
    }
}
