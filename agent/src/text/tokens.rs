//! Word tokens for matching and the offline embedder: lower-cased, Korean
//! particles stripped, English and Korean function words dropped.

/// Hangul syllables and jamo.
pub fn is_hangul(c: char) -> bool {
    matches!(c, '\u{AC00}'..='\u{D7A3}' | '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}')
}

const EN_STOPWORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "to", "of", "in", "on", "at", "for", "with", "about", "from", "by", "is", "are",
    "was", "were", "be", "been", "do", "does", "did", "what", "when", "where", "who", "whom", "which", "why", "how", "has",
    "have", "had", "i", "me", "my", "we", "our", "us", "you", "your", "he", "she", "it", "they", "them", "his", "her",
    "its", "their", "this", "that", "these", "those", "there", "any", "ever", "tell", "show", "remind", "can", "could",
    "would", "should", "will", "so", "very", "just", "s", "t", "up", "out", "get", "got", "time", "anything", "something",
    "thing", "things", "say", "said", "last", "month", "week", "year", "today", "yesterday", "happen", "happened", "first",
    "all", "some", "much", "many", "often", "recently", "lately",
];

const KO_STOPWORDS: &[&str] = &[
    "언제", "뭐", "무엇", "무슨", "어디", "어디서", "누가", "누구", "왜", "어떻게", "얼마나", "몇", "했지", "했어",
    "했나", "했니", "있었지", "있었어", "있었나", "그", "이", "저", "것", "거", "좀", "우리", "내가", "나", "제가",
    "오늘", "어제", "지난주", "지난달", "이번", "지난", "처음", "정말", "너무", "알려줘", "말해줘", "했었지", "였지",
];

/// Particles that attach to Korean nouns; stripped from the end of a word.
const KO_PARTICLES: &[&str] = &[
    "에서는", "에게서", "이랑은", "한테서", "이랑", "에서", "에게", "한테", "까지", "부터", "처럼", "보다", "하고",
    "으로", "이는", "이가", "이를", "이의", "이도", "는", "은", "이", "가", "을", "를", "의", "에", "도", "랑", "와",
    "과", "로", "야", "아", "만",
];

/// Strips one trailing particle, keeping at least one syllable.
pub fn strip_particle(word: &str) -> &str {
    for p in KO_PARTICLES {
        if let Some(stem) = word.strip_suffix(p)
            && stem.chars().count() >= 1
            && stem.chars().last().is_some_and(is_hangul)
        {
            return stem;
        }
    }
    word
}

/// Raw word tokens: runs of letters/digits (apostrophes inside words dropped).
pub fn words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace("'s", "").replace("’s", "").replace(['\'', '’'], "");
    lower
        .split(|c: char| !(c.is_alphanumeric() || is_hangul(c)))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Content tokens: words minus stop words, with Korean particles stripped and
/// English possessive/plural `s` folded.
pub fn content_tokens(text: &str) -> Vec<String> {
    content_words(text).into_iter().map(|(_, token)| token).collect()
}

/// Each content word as written (lower-cased) beside its token. A Korean
/// word's last syllable may be a particle or part of the noun ("태권도" is
/// not "태권" + "도"), so the lexical index keeps both.
pub fn content_words(text: &str) -> Vec<(String, String)> {
    words(text)
        .into_iter()
        .filter_map(|w| {
            if w.chars().any(is_hangul) {
                if KO_STOPWORDS.contains(&w.as_str()) {
                    return None;
                }
                let stem = strip_particle(&w).to_string();
                (!KO_STOPWORDS.contains(&stem.as_str())).then_some((w, stem))
            } else {
                if EN_STOPWORDS.contains(&w.as_str()) {
                    return None;
                }
                Some((w.clone(), w))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_particles_are_stripped() {
        assert_eq!(content_tokens("준호가 어제 처음 자전거를 탔다"), vec!["준호", "자전거", "탔다"]);
    }

    #[test]
    fn english_stopwords_and_apostrophes_are_dropped() {
        assert_eq!(content_tokens("When did Minji's tooth fall out?"), vec!["minji", "tooth", "fall"]);
    }
}
