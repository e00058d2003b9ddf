//! Prompt templates, kept as files in `prompts/` (embedded into the binary).
//! Each has a name and a version; the version that produced an insight is
//! stored with it. A file is front matter, a system part, `===`, a user part.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub name: String,
    pub version: String,
    pub system: String,
    pub user: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PromptError {
    #[error("prompt file is malformed: {0}")]
    Malformed(String),
    #[error("prompt {prompt} needs a value for {{{{{var}}}}}")]
    MissingVar { prompt: String, var: String },
}

/// The prompts the pipelines use.
#[derive(Debug, Clone)]
pub struct Prompts {
    pub route: Prompt,
    pub enrich: Prompt,
    pub answer: Prompt,
    pub plan: Prompt,
    pub describe: Prompt,
}

impl Prompts {
    /// The prompts shipped in `prompts/`.
    pub fn builtin() -> Self {
        let load = |text: &str| Prompt::parse(text).expect("shipped prompts parse (tested)");
        Self {
            route: load(include_str!("../../prompts/route.md")),
            enrich: load(include_str!("../../prompts/enrich.md")),
            answer: load(include_str!("../../prompts/answer.md")),
            plan: load(include_str!("../../prompts/plan.md")),
            describe: load(include_str!("../../prompts/describe.md")),
        }
    }
}

impl Prompt {
    pub fn parse(text: &str) -> Result<Self, PromptError> {
        let malformed = |m: &str| PromptError::Malformed(m.to_string());
        let rest = text.strip_prefix("---\n").ok_or_else(|| malformed("missing front matter"))?;
        let (front, body) = rest.split_once("\n---\n").ok_or_else(|| malformed("unterminated front matter"))?;
        let mut fields = HashMap::new();
        for line in front.lines() {
            let (k, v) = line.split_once(':').ok_or_else(|| malformed("front matter line without ':'"))?;
            fields.insert(k.trim(), v.trim().to_string());
        }
        let (system, user) = body.split_once("\n===\n").ok_or_else(|| malformed("missing '===' between system and user"))?;
        Ok(Self {
            name: fields.remove("name").ok_or_else(|| malformed("no name"))?,
            version: fields.remove("version").ok_or_else(|| malformed("no version"))?,
            system: system.trim().to_string(),
            user: user.trim().to_string(),
        })
    }

    /// The `{{name}}` placeholders of both parts.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out = Vec::new();
        for part in [&self.system, &self.user] {
            let mut rest = part.as_str();
            while let Some(start) = rest.find("{{") {
                let Some(end) = rest[start..].find("}}") else { break };
                let var = rest[start + 2..start + end].trim().to_string();
                if !out.contains(&var) {
                    out.push(var);
                }
                rest = &rest[start + end + 2..];
            }
        }
        out
    }

    /// Renders (system, user), failing if a placeholder has no value.
    pub fn render(&self, vars: &[(&str, &str)]) -> Result<(String, String), PromptError> {
        for var in self.placeholders() {
            if !vars.iter().any(|(k, _)| *k == var) {
                return Err(PromptError::MissingVar { prompt: self.name.clone(), var });
            }
        }
        // One pass over the template, so text inside a value is never re-read.
        let fill = |s: &str| {
            let mut out = String::with_capacity(s.len());
            let mut rest = s;
            while let Some(start) = rest.find("{{") {
                let Some(end) = rest[start..].find("}}") else { break };
                out.push_str(&rest[..start]);
                let var = rest[start + 2..start + end].trim();
                out.push_str(vars.iter().find(|(k, _)| *k == var).map(|(_, v)| *v).unwrap_or_default());
                rest = &rest[start + end + 2..];
            }
            out.push_str(rest);
            out
        };
        Ok((fill(&self.system), fill(&self.user)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_prompts_have_names_versions_and_expected_placeholders() {
        let p = Prompts::builtin();
        assert_eq!((p.route.name.as_str(), p.route.placeholders()), ("route", vec!["message".to_string()]));
        assert_eq!(p.enrich.name, "enrich");
        assert_eq!(p.enrich.placeholders(), vec!["members", "text"]);
        assert_eq!(p.answer.name, "answer");
        assert_eq!(p.answer.placeholders(), vec!["language", "today", "sources", "question"]);
        for prompt in [&p.route, &p.enrich, &p.answer] {
            assert!(!prompt.version.is_empty());
        }
    }

    #[test]
    fn rendering_fills_every_placeholder_and_refuses_missing_ones() {
        let p = Prompts::builtin().enrich;
        let (_, user) = p.render(&[("text", "hello {{members}}"), ("members", "Minji")]).unwrap();
        assert!(user.contains("Children in this family: Minji"));
        assert!(user.ends_with("hello {{members}}"), "a value is not re-rendered: {user}");
        assert!(matches!(p.render(&[]), Err(PromptError::MissingVar { .. })));
    }

    #[test]
    fn malformed_prompt_files_are_refused() {
        assert!(Prompt::parse("no front matter").is_err());
        assert!(Prompt::parse("---\nname: x\nversion: 1\n---\nsystem only").is_err());
    }
}
