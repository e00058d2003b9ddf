//! Plain functions over text that the pipelines decide with: tokens, dates,
//! children's names, routing, and the offline lexicon. No I/O here.

pub mod dates;
pub mod lexical;
pub mod lexicon;
pub mod chunks;
pub mod members;
pub mod route;
pub mod tokens;

/// True when the text is mostly Korean (more Hangul than Latin letters).
pub fn is_korean(text: &str) -> bool {
    let hangul = text.chars().filter(|c| tokens::is_hangul(*c)).count();
    let latin = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
    hangul > 0 && hangul >= latin
}

/// A model's text for storage: without NUL (never text; Postgres refuses it,
/// and one refused row fails a whole batch's write), then cut like `snippet`.
pub fn model_snippet(text: &str, max: usize) -> String {
    snippet(&text.replace('\0', ""), max)
}

/// At most `max` characters of `text`, ending with `…` when cut.
pub fn snippet(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}
