//! Routing: does a message record something, ask something, or is it a
//! command? Clear cases are decided here; the rest is `Unclear` and goes to
//! the chat model (or, offline, is recorded: keeping a note is never lossy).

use super::tokens::words;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Record,
    Ask,
    Help,
    Unclear,
}

/// The intent and the text to act on (a command's argument, or the message).
pub fn route(message: &str) -> (Intent, &str) {
    let m = message.trim();
    if let Some(rest) = m.strip_prefix('/') {
        let (cmd, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let cmd = cmd.split('@').next().unwrap_or(cmd).to_lowercase();
        let arg = arg.trim();
        match cmd.as_str() {
            "ask" | "q" if !arg.is_empty() => return (Intent::Ask, arg),
            "record" | "note" if !arg.is_empty() => return (Intent::Record, arg),
            _ => return (Intent::Help, arg),
        }
    }
    (classify(m), m)
}

const EN_QUESTION_STARTS: &[&str] = &[
    "what", "when", "where", "who", "whom", "which", "why", "how", "did", "does", "do", "is", "are", "was", "were", "has",
    "have", "can", "could", "would", "should", "tell", "show", "list", "remind", "summarize", "summarise", "find", "any",
];

const KO_QUESTION_WORDS: &[&str] = &["언제", "뭐", "무엇", "무슨", "어디", "누가", "누구", "왜", "어떻게", "얼마나", "몇", "어땠"];

const KO_QUESTION_ENDINGS: &[&str] = &[
    "니", "까", "나요", "나", "지", "죠", "냐", "어요?", "알려줘", "말해줘", "보여줘", "찾아줘", "정리해줘", "요약해줘",
];

const KO_STATEMENT_ENDINGS: &[&str] = &["다", "어", "았어", "었어", "했어", "요", "음", "함", "네", "ㅋㅋ", "ㅎㅎ"];

fn classify(m: &str) -> Intent {
    let trimmed = m.trim_end_matches(['.', '!', '~', ' ']);
    if m.ends_with('?') || m.ends_with('？') {
        return Intent::Ask;
    }
    let tokens = words(m);
    let Some(first) = tokens.first() else { return Intent::Unclear };
    if EN_QUESTION_STARTS.contains(&first.as_str()) {
        return Intent::Ask;
    }
    let has_hangul = m.chars().any(super::tokens::is_hangul);
    if has_hangul {
        if KO_QUESTION_ENDINGS.iter().any(|e| trimmed.ends_with(e)) {
            return Intent::Ask;
        }
        if tokens.iter().any(|t| KO_QUESTION_WORDS.iter().any(|q| t.starts_with(q))) {
            return Intent::Unclear;
        }
        if KO_STATEMENT_ENDINGS.iter().any(|e| trimmed.ends_with(e)) {
            return Intent::Record;
        }
        return Intent::Unclear;
    }
    if m.ends_with('.') || m.ends_with('!') || tokens.len() >= 4 {
        return Intent::Record;
    }
    Intent::Unclear
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_statements_are_recorded() {
        assert_eq!(route("Minji lost her first tooth today").0, Intent::Record);
        assert_eq!(route("Junho said 'dada' for the first time!").0, Intent::Record);
    }

    #[test]
    fn english_questions_are_asked() {
        assert_eq!(route("When did Minji lose her first tooth?").0, Intent::Ask);
        assert_eq!(route("what did junho eat yesterday").0, Intent::Ask);
        assert_eq!(route("Tell me about Minji's school").0, Intent::Ask);
    }

    #[test]
    fn korean_statements_and_questions_are_told_apart() {
        assert_eq!(route("준호가 어제 처음 자전거를 탔다").0, Intent::Record);
        assert_eq!(route("민지가 오늘 학교에서 상을 받았어요").0, Intent::Record);
        assert_eq!(route("준호 자전거 언제 탔지?").0, Intent::Ask);
        assert_eq!(route("민지 이빨 언제 빠졌는지 알려줘").0, Intent::Ask);
        assert_eq!(route("준호가 뭐 먹었지").0, Intent::Ask);
    }

    #[test]
    fn commands_route_with_their_argument() {
        assert_eq!(route("/ask when did she walk"), (Intent::Ask, "when did she walk"));
        assert_eq!(route("/record Minji walked"), (Intent::Record, "Minji walked"));
        assert_eq!(route("/help"), (Intent::Help, ""));
        assert_eq!(route("/record"), (Intent::Help, ""));
    }

    #[test]
    fn short_fragments_are_unclear() {
        assert_eq!(route("pizza night").0, Intent::Unclear);
        assert_eq!(route("민지 어디 갔").0, Intent::Unclear);
    }
}
