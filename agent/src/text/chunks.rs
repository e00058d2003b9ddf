//! Splitting a long entry into pieces an embedding model takes whole. Sizes
//! are counted in `cl100k_base` tokens (OpenAI's embedding tokenizer, and a
//! fair measure for others); pieces break at paragraphs, then sentences, then
//! words, so each stays readable.

use std::sync::LazyLock;

use text_splitter::{ChunkConfig, TextSplitter};

/// The tokenizer, loaded once (its tables ship inside the crate).
static TOKENIZER: LazyLock<&'static tiktoken_rs::CoreBPE> = LazyLock::new(tiktoken_rs::cl100k_base_singleton);

/// The pieces of `text`, each at most `max_tokens` tokens; one piece when it fits.
pub fn chunks(text: &str, max_tokens: usize) -> Vec<String> {
    let max_tokens = max_tokens.max(16);
    if text.len() / 4 < max_tokens && token_count(text) <= max_tokens {
        return vec![text.to_string()];
    }
    let splitter = TextSplitter::new(ChunkConfig::new(max_tokens).with_sizer(*TOKENIZER));
    let pieces: Vec<String> = splitter.chunks(text).map(str::to_string).filter(|p| !p.trim().is_empty()).collect();
    if pieces.is_empty() { vec![text.to_string()] } else { pieces }
}

/// How many `cl100k_base` tokens `text` is.
pub fn token_count(text: &str) -> usize {
    TOKENIZER.encode_ordinary(text).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_stay_whole() {
        assert_eq!(chunks("Minji lost her first tooth today", 512), vec!["Minji lost her first tooth today".to_string()]);
    }

    #[test]
    fn long_texts_in_both_languages_split_within_the_limit_and_lose_nothing() {
        let en = "Minji and Junho spent the whole afternoon at the beach building castles. ".repeat(150);
        let ko = "민지와 준호는 오후 내내 바닷가에서 모래성을 쌓으며 놀았다. ".repeat(300);
        for text in [en, ko] {
            let pieces = chunks(&text, 256);
            assert!(pieces.len() > 1, "{}", pieces.len());
            for p in &pieces {
                assert!(token_count(p) <= 256, "{} tokens", token_count(p));
            }
            let joined: String = pieces.concat();
            let squash = |s: &str| s.split_whitespace().collect::<String>();
            assert_eq!(squash(&joined), squash(&text), "every word is in some piece");
        }
    }
}
