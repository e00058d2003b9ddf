//! The bot's own words in English and Korean (answers come from the agent,
//! already in the language of the question).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ko,
}

impl Lang {
    /// From a stored override, else Telegram's `language_code`.
    pub fn pick(override_: Option<&str>, language_code: Option<&str>) -> Lang {
        match override_.or(language_code) {
            Some(code) if code.starts_with("ko") => Lang::Ko,
            _ => Lang::En,
        }
    }
}

pub fn commands(lang: Lang) -> Vec<(&'static str, &'static str)> {
    match lang {
        Lang::En => vec![
            ("start", "Link your account with a code"),
            ("help", "What I can do"),
            ("ask", "Ask about your journal"),
            ("record", "Record a note"),
            ("capsule", "Seal a message for a child: /capsule Minji in 10 years: ..."),
            ("kids", "List or add children"),
            ("recent", "Your latest entries"),
            ("export", "Get a link to your family's export"),
            ("prompts", "One question a day: /prompts on 20:30 or off"),
            ("lang", "Reply in English or Korean"),
            ("unlink", "Unlink this Telegram account"),
        ],
        Lang::Ko => vec![
            ("start", "코드로 계정 연결"),
            ("help", "사용 방법"),
            ("ask", "일기에 대해 질문하기"),
            ("record", "기록 남기기"),
            ("capsule", "아이에게 타임캡슐 남기기: /capsule 민지 10년 후: ..."),
            ("kids", "아이 목록 보기·추가"),
            ("recent", "최근 기록"),
            ("export", "가족 기록 내보내기 링크"),
            ("prompts", "매일 질문 하나: /prompts on 20:30 또는 off"),
            ("lang", "한국어/영어로 답하기"),
            ("unlink", "이 텔레그램 계정 연결 해제"),
        ],
    }
}

pub fn not_linked(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "Hi! I'm Dadly, a family journal. This Telegram account isn't linked to a family yet, so I haven't kept anything you sent. Ask a parent who uses Dadly for a link code (in the app, or `dadly family invite`) and send /start CODE.",
        Lang::Ko => "안녕하세요! 가족 일기 Dadly예요. 이 텔레그램 계정은 아직 가족과 연결되지 않아서 보내신 내용은 저장하지 않았어요. Dadly를 쓰는 부모님께 연결 코드를 받아 /start 코드 로 보내 주세요.",
    }
}

pub fn linked(lang: Lang, name: &str) -> String {
    match lang {
        Lang::En => format!("You're linked, {name}! Tell me what happened today, send a voice note or a photo, or ask me anything about your journal."),
        Lang::Ko => format!("{name}님, 연결되었어요! 오늘 있었던 일을 보내 주시거나 음성 메시지·사진을 보내 주세요. 일기에 대해 무엇이든 물어보셔도 돼요."),
    }
}

pub fn prompt_kept(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "✍️ Kept in the journal — thank you!",
        Lang::Ko => "✍️ 일기에 남겼어요. 고마워요!",
    }
}

pub fn joined(lang: Lang, name: &str) -> String {
    match lang {
        Lang::En => format!("Welcome to the family's journal, {name}! Everything you tell me is shared with the other parents. Tell me what happened today, or ask me anything."),
        Lang::Ko => format!("{name}님, 가족 일기에 오신 걸 환영해요! 보내 주시는 내용은 다른 부모님과 함께 보여요. 오늘 있었던 일을 들려주시거나 무엇이든 물어보세요."),
    }
}

pub fn bad_code(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "That code didn't work: it may have expired or been used already. Ask for a new one.",
        Lang::Ko => "코드가 맞지 않아요. 만료되었거나 이미 사용된 코드일 수 있어요. 새 코드를 받아 주세요.",
    }
}

pub fn need_code(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "Send /start followed by your link code, e.g. /start AB3DEF7H.",
        Lang::Ko => "/start 뒤에 연결 코드를 붙여 보내 주세요. 예: /start AB3DEF7H",
    }
}

pub fn unlinked(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "This Telegram account is no longer linked. Your family's journal is untouched.",
        Lang::Ko => "이 텔레그램 계정의 연결을 해제했어요. 가족 일기는 그대로 있어요.",
    }
}

pub fn voice_received(lang: Lang, transcriber: bool) -> &'static str {
    match (lang, transcriber) {
        (Lang::En, true) => "🎙️ Got your voice note — transcribing it now.",
        (Lang::En, false) => "🎙️ Saved your voice note. Speech-to-text isn't set up yet, so I'll transcribe it as soon as it is — nothing is lost.",
        (Lang::Ko, true) => "🎙️ 음성 메시지를 받았어요. 지금 글로 옮기는 중이에요.",
        (Lang::Ko, false) => "🎙️ 음성 메시지를 저장했어요. 아직 음성 인식이 설정되지 않아서, 설정되는 대로 글로 옮겨 드릴게요. 사라지지 않아요.",
    }
}

pub fn photo_saved(lang: Lang, album: bool) -> &'static str {
    match (lang, album) {
        (Lang::En, false) => "📷 Saved to your journal.",
        (Lang::En, true) => "📷 Saved the album to your journal.",
        (Lang::Ko, false) => "📷 일기에 저장했어요.",
        (Lang::Ko, true) => "📷 사진 묶음을 일기에 저장했어요.",
    }
}

pub fn too_large(lang: Lang, max_mb: u64) -> String {
    match lang {
        Lang::En => format!("That file is too large for me to download (over {max_mb} MB). Could you send a shorter voice note or a smaller photo?"),
        Lang::Ko => format!("파일이 너무 커서 받을 수 없어요 ({max_mb}MB 초과). 더 짧은 음성이나 작은 사진으로 보내 주세요."),
    }
}

pub fn unsupported(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "I can keep text, voice notes and photos. This kind of message I can't store yet.",
        Lang::Ko => "글, 음성 메시지, 사진을 기록할 수 있어요. 이런 메시지는 아직 저장할 수 없어요.",
    }
}

pub fn corrected(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "✍️ Updated — the previous version is kept.",
        Lang::Ko => "✍️ 고쳤어요. 이전 내용도 남아 있어요.",
    }
}

pub fn retry_later(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "Something went wrong on my side. Please try again in a moment.",
        Lang::Ko => "제 쪽에 문제가 생겼어요. 잠시 후 다시 시도해 주세요.",
    }
}

/// Too many messages in a short time: this one was not kept.
pub fn slow_down(lang: Lang, secs: u64) -> String {
    match lang {
        Lang::En => format!("You're sending messages faster than I can keep up — I didn't keep that one. Please send it again in {secs} s."),
        Lang::Ko => format!("메시지가 너무 빠르게 와서 방금 것은 저장하지 못했어요. {secs}초 후에 다시 보내 주세요."),
    }
}

/// After the same message failed several times: it is set aside, not retried forever.
pub fn set_aside(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "Sorry — something about your last message keeps failing on my side, so I've set it aside. If it was meant for your journal, please send it again, perhaps in other words.",
        Lang::Ko => "죄송해요. 방금 보내신 메시지를 처리하는 중에 계속 문제가 생겨서 따로 빼 두었어요. 일기에 남기려던 내용이라면 다시 한 번 (다른 표현으로) 보내 주세요.",
    }
}

pub fn no_entries(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "Nothing recorded yet.",
        Lang::Ko => "아직 기록이 없어요.",
    }
}

pub fn kids_usage(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "Add a child with /kids add NAME [ALIAS …], e.g. /kids add Minji 민지",
        Lang::Ko => "아이 추가: /kids add 이름 [별명 …] 예: /kids add Minji 민지",
    }
}

pub fn export_link(lang: Lang, url: &str) -> String {
    match lang {
        Lang::En => format!("Here is your family's export (JSON, link valid for 1 hour):\n{url}"),
        Lang::Ko => format!("가족 기록 내보내기 파일이에요 (JSON, 1시간 동안 유효):\n{url}"),
    }
}

pub fn language_set(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "OK — I'll reply in English.",
        Lang::Ko => "알겠어요. 한국어로 답할게요.",
    }
}

pub fn entry_gone(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "That entry no longer exists.",
        Lang::Ko => "그 기록은 더 이상 없어요.",
    }
}
