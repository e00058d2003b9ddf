//! Which children a text is about, from their names and aliases. Latin names
//! match whole words ("Minji's" counts, "Minjiko" does not); Hangul names match
//! a word that starts with them, since Korean attaches particles ("민지가").

use crate::domain::{Member, MemberId};

use super::tokens::{is_hangul, words};

/// The ids of the members the text mentions, in the family's order.
pub fn detect_members(text: &str, members: &[Member]) -> Vec<MemberId> {
    let tokens = words(text);
    members
        .iter()
        .filter(|m| m.names().any(|name| mentions(&tokens, text, name)))
        .map(|m| m.id)
        .collect()
}

fn mentions(tokens: &[String], text: &str, name: &str) -> bool {
    let name = name.trim().to_lowercase();
    if name.is_empty() {
        return false;
    }
    if name.chars().any(is_hangul) {
        // Multi-word Hangul names (rare) fall back to substring search.
        if name.contains(' ') {
            return text.to_lowercase().contains(&name);
        }
        return tokens.iter().any(|t| t.starts_with(&name) && hangul_suffix_ok(&t[name.len()..]));
    }
    let parts = words(&name);
    if parts.is_empty() {
        return false;
    }
    tokens.windows(parts.len()).any(|w| w == parts.as_slice())
}

/// What may follow a Hangul name inside one word: nothing, or a particle or
/// vocative ending (short); a longer tail is probably another word.
fn hangul_suffix_ok(rest: &str) -> bool {
    rest.chars().count() <= 3 && rest.chars().all(is_hangul)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use uuid::Uuid;

    fn member(name: &str, aliases: &[&str]) -> Member {
        Member {
            id: Uuid::now_v7(),
            family_id: Uuid::nil(),
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            birth_date: None,
            created_at: Utc::now(),
            age_notice_at: None,
        }
    }

    #[test]
    fn english_names_match_whole_words_including_possessives() {
        let minji = member("Minji", &["민지"]);
        let members = vec![minji.clone()];
        assert_eq!(detect_members("Minji lost her first tooth today", &members), vec![minji.id]);
        assert_eq!(detect_members("minji's teacher called", &members), vec![minji.id]);
        assert!(detect_members("Minjiko came over", &members).is_empty());
    }

    #[test]
    fn korean_aliases_match_with_particles() {
        let minji = member("Minji", &["민지"]);
        let junho = member("Junho", &["준호"]);
        let members = vec![minji.clone(), junho.clone()];
        assert_eq!(detect_members("준호가 어제 처음 자전거를 탔다", &members), vec![junho.id]);
        assert_eq!(detect_members("민지랑 준호는 공원에 갔다", &members), vec![minji.id, junho.id]);
        assert_eq!(detect_members("민지야 사랑해", &members), vec![minji.id]);
    }

    #[test]
    fn multi_word_names_match_in_sequence() {
        let anna = member("Anna Lee", &[]);
        assert_eq!(detect_members("Today Anna Lee drew a cat", std::slice::from_ref(&anna)), vec![anna.id]);
        assert!(detect_members("Anna drew a cat", &[anna]).is_empty());
    }

    #[test]
    fn no_names_means_no_members() {
        assert!(detect_members("We baked bread", &[member("Minji", &[])]).is_empty());
    }
}
