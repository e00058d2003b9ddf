//! Terms for the lexical index that sits beside the vectors (hybrid
//! retrieval). The same terms are written for an entry and asked for a
//! question, so both backends index pre-tokenised text: no database
//! tokenizer has to understand Korean.
//!
//! English words are lower-cased and lightly stemmed (plurals, -ing, -ed);
//! Korean words lose their particles and also give their syllable bigrams,
//! so a compound ("자전거타기") meets its parts ("자전거").

use super::tokens::{content_words, is_hangul};

/// The most terms one entry or question gives (a long entry's tail adds little).
const MAX_TERMS: usize = 512;
/// Longer "words" (a pasted link, a key smash) are not terms.
const MAX_TERM_CHARS: usize = 64;

/// A light English stemmer: enough to meet "wheels" with "wheel" and
/// "swimming" with "swim", never more than a suffix.
fn stem(word: &str) -> String {
    let n = word.chars().count();
    if !word.is_ascii() || n <= 3 {
        return word.to_string();
    }
    if let Some(s) = word.strip_suffix("ies").filter(|_| n > 4) {
        return format!("{s}y");
    }
    for suffix in ["ing", "ed"] {
        if let Some(s) = word.strip_suffix(suffix).filter(|s| s.len() >= 3) {
            // "swimming" → "swim", "hopped" → "hop".
            let b = s.as_bytes();
            if b.len() >= 2 && b[b.len() - 1] == b[b.len() - 2] && !matches!(b[b.len() - 1], b'l' | b's' | b'z') {
                return s[..s.len() - 1].to_string();
            }
            return s.to_string();
        }
    }
    if word.ends_with('s') && !word.ends_with("ss") && !word.ends_with("us") {
        return word[..word.len() - 1].to_string();
    }
    word.to_string()
}

/// English movement verbs a question wraps its subject in ("when did we go
/// to the zoo", "first go skiing"): no content to match, and an entry seldom
/// repeats them, so they would hold a real match under the two-thirds rule.
const EN_LIGHT_VERBS: &[&str] = &["go", "goes", "going", "went", "gone"];

/// Korean ways of asking "how is it / how was it": no content to match.
const KO_QUESTION_WORDS: &[&str] = &["어때", "어때요", "어땠어", "어땠어요", "어땠니", "어땠지", "어떤지", "어땠는지", "어떻게"];

/// The terms one content word gives. English: its stem. Korean: the word
/// without its particle, the word as written (its last syllable may belong
/// to the noun: "태권도" would lose its "도"), and syllable bigrams, so a
/// compound ("자전거타기") meets its parts ("자전거"): those of the word
/// without its particle when it has three syllables or more, else of the
/// word as written (the noun the particle rule cut short).
fn forms(written: &str, token: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !token.chars().any(is_hangul) {
        if !EN_LIGHT_VERBS.contains(&token) {
            out.push(stem(token));
        }
    } else if !KO_QUESTION_WORDS.contains(&written) && !KO_QUESTION_WORDS.contains(&token) {
        out.push(token.to_string());
        if written != token {
            out.push(written.to_string());
        }
        let chars: Vec<char> = if token.chars().count() >= 3 { token.chars().collect() } else { written.chars().collect() };
        if chars.len() >= 3 {
            out.extend(chars.windows(2).map(|pair| pair.iter().collect::<String>()));
        }
    }
    out.retain(|t| t.chars().count() <= MAX_TERM_CHARS);
    out
}

/// The index terms of a text, in order, each once.
pub fn terms(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (written, token) in content_words(text) {
        for t in forms(&written, &token) {
            if out.len() < MAX_TERMS && !t.is_empty() && !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// The share of the question's terms that the entry's terms hold (0..=1).
pub fn overlap(question: &[String], entry: &[String]) -> f32 {
    if question.is_empty() {
        return 0.0;
    }
    question.iter().filter(|t| entry.contains(t)).count() as f32 / question.len() as f32
}

/// Reciprocal rank fusion: each list adds `weight / (60 + rank)` (rank from 1)
/// to an item's score; the items of either list, best fused score first.
pub fn fuse<T: PartialEq + Clone>(lists: &[(f32, &[T])]) -> Vec<(T, f32)> {
    let mut fused: Vec<(T, f32)> = Vec::new();
    for (weight, list) in lists {
        for (rank, item) in list.iter().enumerate() {
            let add = weight / (60.0 + rank as f32 + 1.0);
            match fused.iter_mut().find(|(x, _)| x == item) {
                Some((_, score)) => *score += add,
                None => fused.push((item.clone(), add)),
            }
        }
    }
    fused.sort_by(|a, b| b.1.total_cmp(&a.1));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_terms_are_stemmed_and_stopwords_dropped() {
        assert_eq!(terms("No more little wheels on the bike!"), vec!["no", "more", "little", "wheel", "bike"]);
        assert_eq!(terms("swimming, hopped, stories, glass"), vec!["swim", "hop", "story", "glass"]);
        assert_eq!(stem("wheels"), stem("wheel"));
    }

    #[test]
    fn going_somewhere_is_no_term() {
        assert_eq!(terms("When did Haneul first go skiing?"), vec!["haneul", "ski"]);
        assert_eq!(terms("We went to the zoo"), vec!["zoo"]);
        assert!(overlap(&terms("When did we go to the zoo?"), &terms("Zoo trip with cousins")) >= 2.0 / 3.0);
    }

    #[test]
    fn korean_terms_lose_particles_and_give_bigrams() {
        let t = terms("준호가 자전거를 탔다");
        assert!(t.contains(&"준호".to_string()) && t.contains(&"자전거".to_string()) && t.contains(&"자전".to_string()), "{t:?}");
        let compound = terms("자전거타기 연습");
        assert!(compound.contains(&"자전".to_string()) && compound.contains(&"전거".to_string()), "{compound:?}");
        // A question and its entry meet on the same terms.
        let q = terms("준호 자전거 언제 탔어?");
        assert!(q.iter().any(|x| t.contains(x)));
    }

    #[test]
    fn fusion_rewards_agreement_and_weights_count() {
        let dense = ["a", "b", "c"];
        let lexical = ["c", "d"];
        let fused = fuse(&[(1.0, &dense[..]), (1.0, &lexical[..])]);
        assert_eq!(fused.iter().map(|x| x.0).collect::<Vec<_>>(), vec!["c", "a", "b", "d"], "in both lists beats first in one; a tie keeps the first list's order");
        let dense_only = fuse(&[(1.0, &dense[..]), (0.0, &lexical[..])]);
        assert_eq!(dense_only[0].0, "a");
        assert_eq!(overlap(&["x".into(), "y".into()], &["y".into()]), 0.5);
    }

    #[test]
    fn a_korean_word_is_matched_as_written_as_well_as_without_its_particle() {
        // "태권도" ends in the particle-like "도": the entry keeps the whole word too.
        let entry = terms("오늘 민지 태권도 갔다. 열심히 했다.");
        assert!(entry.contains(&"태권도".to_string()) && entry.contains(&"태권".to_string()), "{entry:?}");
        // "어때" asks; it is no term. The question's bigrams are its noun's, not "도는".
        let asked = terms("태권도는 어때?");
        assert_eq!(asked, vec!["태권도", "태권도는", "태권", "권도"]);
        assert!(overlap(&asked, &entry) >= 0.75, "{asked:?} {entry:?}");
    }

    #[test]
    fn odd_text_gives_no_terms_or_bounded_ones() {
        assert!(terms("").is_empty());
        assert!(terms("?!… 🎈").is_empty());
        assert!(terms(&"word ".repeat(10_000)).len() == 1);
        let many: String = (0..2000).map(|i| format!("w{i} ")).collect();
        assert_eq!(terms(&many).len(), MAX_TERMS);
        assert!(terms("a\u{0}b").iter().all(|t| !t.contains('\0')));
        assert!(terms(&"x".repeat(5000)).is_empty(), "no term past 64 characters");
    }
}
