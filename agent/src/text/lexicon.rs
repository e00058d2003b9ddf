//! The offline fallback's vocabulary: topics and emotions recognised from
//! keywords (English word stems and Korean stems). Deliberately simple and
//! labelled as such; a real model does this properly.

/// (label, keywords). A keyword matches a word that starts with it; one
/// ending in `=` only the word itself ("mad=" is not "made", "read=" not
/// "ready"); one with a space, the phrase.
const TOPICS: &[(&str, &[&str])] = &[
    ("milestone", &["first", "tooth", "teeth", "walked", "crawl", "birthday", "처음", "이빨", "이가", "걸음", "생일", "첫"]),
    ("school", &["school", "class", "teacher", "homework", "kindergarten", "daycare", "preschool", "학교", "유치원", "어린이집", "선생님", "숙제", "수업"]),
    ("health", &[
        "sick", "unwell", "fever", "doctor", "hospital", "cough", "cold", "vaccine", "dentist", "infection", "medicine", "antibiotic",
        "threw up", "throw up", "throwing up", "throws up", "vomit", "stomach bug", "runny nose", "아파", "아팠", "열이", "병원", "감기", "기침", "치과", "예방접종", "토했", "토하", "구토", "장염", "중이염",
        "콧물", "해열제", "항생제",
    ]),
    ("food", &["ate", "eat", "dinner", "lunch", "breakfast", "snack", "cook", "bake", "baked", "먹", "밥", "간식", "요리", "저녁", "점심", "아침밥"]),
    ("sleep", &["sleep", "slept", "nap", "bedtime", "nightmare", "잠", "낮잠", "잤", "자고", "악몽"]),
    ("play", &["play", "park", "toy", "game", "lego", "playground", "놀", "놀이터", "장난감", "게임", "레고", "공원"]),
    ("sports", &["bike", "bicycle", "soccer", "football", "swim", "ran=", "run=", "runs=", "running", "race", "자전거", "축구", "수영", "달리기", "운동"]),
    ("family", &["grandma", "grandpa", "granny", "mom", "dad", "sister", "brother", "cousin", "uncle", "aunt", "할머니", "할아버지", "엄마", "아빠", "언니", "오빠", "누나", "동생", "사촌"]),
    ("friends", &["friend", "playdate", "buddy", "친구"]),
    ("art", &["draw=", "draws=", "drawing", "drew", "paint", "craft", "그림", "그렸", "색칠", "만들"]),
    ("music", &["sing=", "sings=", "singing", "sang", "song", "piano", "violin", "dance", "노래", "피아노", "춤", "바이올린"]),
    ("reading", &["book", "read=", "reads=", "reading", "story", "책", "읽", "동화"]),
    ("outing", &["zoo", "aquarium", "beach", "trip", "museum", "travel", "vacation", "동물원", "수족관", "바다", "여행", "박물관", "캠핑", "나들이"]),
    ("language", &["word", "words", "said", "says", "talk", "spoke", "sentence", "말을", "말했", "단어", "말하"]),
];

const EMOTIONS: &[(&str, &[&str])] = &[
    ("joy", &["happy", "joy", "laugh", "smile", "giggl", "fun", "delight", "행복", "기뻐", "기뻤", "웃", "즐거"]),
    ("pride", &["proud", "award", "prize", "achiev", "자랑", "뿌듯", "상을", "칭찬"]),
    ("excitement", &["excited", "thrill", "can't wait", "신나", "신났", "설레"]),
    ("sadness", &["sad", "cried", "cry=", "crying", "tears", "miss", "슬퍼", "슬펐", "울었", "울어", "울고", "그리워"]),
    ("fear", &["scared", "afraid", "fear", "nightmare", "nervous", "무서", "겁", "악몽", "긴장"]),
    ("anger", &["angry", "mad=", "tantrum", "meltdown", "melted down", "upset", "화가", "화났", "떼를", "떼쓰", "떼썼", "짜증"]),
    ("tiredness", &["tired", "exhausted", "sleepy", "피곤", "졸려", "지쳤"]),
    ("love", &["love", "hug", "kiss", "cuddle", "사랑", "안아", "뽀뽀"]),
    ("surprise", &["surprise", "wow", "amazing", "놀랐", "깜짝", "대박"]),
];

fn labels(text: &str, table: &[(&'static str, &[&str])]) -> Vec<String> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !(c.is_alphanumeric() || c == '\'')).filter(|w| !w.is_empty()).collect();
    table
        .iter()
        .filter(|(_, keys)| {
            keys.iter().any(|k| match k.strip_suffix('=') {
                Some(word) => words.contains(&word),
                None if k.contains(' ') => lower.contains(k),
                None => words.iter().any(|w| w.starts_with(k)),
            })
        })
        .map(|(label, _)| label.to_string())
        .collect()
}

/// Topic labels the text touches, in table order.
pub fn topics(text: &str) -> Vec<String> {
    labels(text, TOPICS)
}

/// Emotion labels the text expresses, in table order.
pub fn emotions(text: &str) -> Vec<String> {
    labels(text, EMOTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_emotions_come_from_keywords_in_both_languages() {
        assert_eq!(topics("Minji lost her first tooth today"), vec!["milestone"]);
        assert_eq!(topics("준호가 어제 처음 자전거를 탔다"), vec!["milestone", "sports"]);
        assert_eq!(emotions("She laughed so much, we were proud"), vec!["joy", "pride"]);
        assert_eq!(emotions("민지가 울었어"), vec!["sadness"]);
        assert_eq!(topics("Junho threw up twice — stomach bug going around"), vec!["health"]);
        assert_eq!(topics("병원에서 준호 중이염이래"), vec!["health"]);
        assert!(emotions("We went to the store").is_empty());
        // A question is worded in its own tense: "throw up" as the entry's "threw up".
        assert_eq!(topics("How many times did Jiwoo throw up this year?"), vec!["health"]);
        assert_eq!(emotions("올해 지우 몇 번 떼썼어?"), vec!["anger"]);
        assert_eq!(emotions("He melted down at the store"), vec!["anger"]);
        // A short keyword is the word itself, not every word it starts.
        assert!(emotions("Minji made a card for grandma").is_empty(), "made is not mad");
        assert_eq!(emotions("Junho was so mad at his brother"), vec!["anger"]);
        assert!(!topics("Getting ready for school").contains(&"reading".to_string()), "ready is not read");
        assert!(topics("We read two books").contains(&"reading".to_string()));
        assert!(!topics("Runny nose all week").contains(&"sports".to_string()), "runny is not run");
    }
}
