#!/usr/bin/env python3
"""Generates eval/journal.json: a synthetic but realistic two-year family
journal (Minji, b. 2018; Junho, b. 2021; English and Korean entries, photos
described in text) and questions with the entries each answer must cite.

Deterministic (seeded): re-running gives the same file. The questions are
written against the entries' meaning, mostly in other words than the entry's
("no more little wheels" ↔ "without training wheels"), and by type: lookup
(paraphrase), cross-language, per-child, first/last time, period, count, and
unanswerable (must find nothing)."""
import json, random, datetime as dt

rng = random.Random(20261127)
START, END = dt.date(2024, 11, 1), dt.date(2026, 10, 31)
TODAY = "2026-11-01T20:00:00+09:00"
entries, questions = [], []

def add(day, text, kids, tags, lang):
    e = {"id": f"e{len(entries)+1:03d}", "date": day.isoformat(), "text": text, "children": kids, "tags": tags, "lang": lang}
    entries.append(e)
    return e["id"]

def ask(q, expect, kind, lang="en"):
    questions.append({"id": f"q{len(questions)+1:03d}", "question": q, "expect": expect, "type": kind, "lang": lang})

def rand_day(a=START, b=END):
    return a + dt.timedelta(days=rng.randrange((b - a).days + 1))

# ---- One-off events, each with questions in other words --------------------
unique = [
 # (date, kids, lang, text, [(question, qlang, type)])
 ("2025-05-18", ["Minji"], "en", "No more little wheels on the bike! Minji pedalled all the way around the park by herself.",
  [("When did Minji first ride her bicycle without training wheels?", "en", "lookup"), ("민지가 보조바퀴 없이 자전거를 처음 탄 게 언제야?", "ko", "cross_language")]),
 ("2025-02-09", ["Minji"], "ko", "민지 앞니가 드디어 빠졌다! 사과 먹다가 쏙. 이빨 요정한테 편지도 썼다.",
  [("When did Minji lose her front tooth?", "en", "cross_language"), ("민지 첫 이가 빠진 날은?", "ko", "lookup")]),
 ("2025-08-03", ["Junho"], "en", "Junho said 'moon' while pointing at the sky — his first real word that wasn't mama or dada.",
  [("What was Junho's first word besides mama and dada?", "en", "lookup"), ("준호가 엄마 아빠 말고 처음 한 단어는?", "ko", "cross_language")]),
 ("2026-03-02", ["Minji"], "ko", "민지 초등학교 입학식. 새 가방 메고 씩씩하게 들어갔다. 담임 선생님은 박지은 선생님.",
  [("When did Minji start elementary school?", "en", "cross_language"), ("민지 담임 선생님 이름이 뭐였지?", "ko", "lookup")]),
 ("2025-07-21", ["Minji", "Junho"], "en", "[photo] Minji and Junho building a sandcastle at Haeundae beach; Junho kept knocking the towers down.",
  [("Find the picture of the kids making a sandcastle at the beach", "en", "lookup"), ("해운대에서 모래성 쌓던 사진 찾아줘", "ko", "cross_language")]),
 ("2025-10-12", ["Junho"], "ko", "준호 첫 돌 잔치 대신 할머니 댁에서 두 번째 생일 파티. 케이크에 얼굴을 박았다.",
  [("What happened at Junho's second birthday party?", "en", "cross_language")]),
 ("2026-01-17", ["Minji"], "en", "Minji swam a whole length of the pool without her float for the first time. Coach Lee gave her a sticker.",
  [("When could Minji first swim across the pool with no armbands?", "en", "lookup"), ("민지가 튜브 없이 수영장 끝까지 수영한 날?", "ko", "cross_language")]),
 ("2025-04-05", ["Minji", "Junho"], "en", "Cherry blossoms at Seokchon Lake. Junho tried to eat a petal; Minji made a flower crown.",
  [("When did we go see the cherry blossoms?", "en", "lookup"), ("벚꽃 보러 간 게 언제였지?", "ko", "cross_language")]),
 ("2026-06-14", ["Junho"], "ko", "준호가 처음으로 혼자 변기에 쉬를 했다! 기저귀 졸업 선언.",
  [("When was Junho potty trained?", "en", "cross_language"), ("준호 기저귀 뗀 게 언제야?", "ko", "lookup")]),
 ("2025-12-24", ["Minji", "Junho"], "en", "Christmas Eve: Minji left cookies and a carrot for Santa's reindeer; Junho fell asleep under the tree.",
  [("What did Minji leave out for the reindeer?", "en", "lookup"), ("크리스마스 이브에 민지가 산타에게 뭘 남겨뒀어?", "ko", "cross_language")]),
 ("2026-08-09", ["Minji"], "ko", "민지가 피아노 학원 발표회에서 '작은 별'을 연주했다. 한 번도 안 틀렸다.",
  [("What song did Minji play at her piano recital?", "en", "cross_language"), ("피아노 발표회에서 민지가 친 곡은?", "ko", "lookup")]),
 ("2025-09-20", ["Junho"], "en", "Junho climbed out of his crib by himself at 6am and walked into our room grinning. Time for a big-boy bed.",
  [("When did Junho escape from his cot?", "en", "lookup")]),
 ("2026-02-14", ["Minji"], "en", "[photo] Minji's drawing of our family as penguins, stuck on the fridge. Dad is the fat one.",
  [("Show me the picture Minji drew of us as penguins", "en", "lookup"), ("민지가 우리 가족을 펭귄으로 그린 그림", "ko", "cross_language")]),
 ("2025-06-28", ["Minji", "Junho"], "ko", "제주도 가족여행 첫날. 민지는 말을 타 보고, 준호는 귤 주스를 세 잔 마셨다.",
  [("What did the kids do on our Jeju trip?", "en", "cross_language"), ("제주도에서 민지가 탄 동물은?", "ko", "lookup")]),
 ("2026-04-25", ["Junho"], "en", "Junho counted to ten in English and then in Korean at dinner, very proud of himself.",
  [("When could Junho count to ten in two languages?", "en", "lookup"), ("준호가 열까지 셀 수 있게 된 게 언제야?", "ko", "cross_language")]),
 ("2025-11-23", ["Minji"], "en", "Minji read a whole picture book out loud to Junho tonight — 'The Very Hungry Caterpillar' — sounding out every word.",
  [("When did Minji first read a book aloud on her own?", "en", "lookup")]),
 ("2026-09-05", ["Minji", "Junho"], "ko", "추석 연휴에 할아버지 댁. 민지랑 준호가 송편을 빚었는데 준호 송편은 공룡 모양.",
  [("What shape were Junho's rice cakes at Chuseok?", "en", "cross_language"), ("추석에 준호가 만든 송편 모양은?", "ko", "lookup")]),
 ("2025-03-15", ["Junho"], "en", "Junho took his first steps! Three wobbly steps from the sofa to Minji.",
  [("When did Junho start walking?", "en", "lookup"), ("준호가 처음 걸은 날", "ko", "cross_language")]),
 ("2026-05-05", ["Minji", "Junho"], "ko", "어린이날 에버랜드. 민지는 롤러코스터 키 제한을 통과해서 처음 탔고 준호는 회전목마만 다섯 번.",
  [("What did Minji ride for the first time on Children's Day?", "en", "cross_language"), ("어린이날 준호는 뭐 탔어?", "ko", "lookup")]),
 ("2026-07-30", ["Minji"], "en", "[photo] Minji holding the biggest cucumber from our balcony garden, grinning with a gap in her teeth.",
  [("Find the photo of Minji with the cucumber she grew", "en", "lookup")]),
]
for day, kids, lang, text, qs in unique:
    i = add(dt.date.fromisoformat(day), text, kids, ["event"], lang)
    for q, ql, kind in qs:
        ask(q, [i], kind, ql)

# ---- Recurring life: sickness, outings, lessons, everyday -----------------
sick_en = ["{k} had a fever of 38.{d} tonight; gave medicine and lots of cuddles.", "{k} has a runny nose and a cough, stayed home from daycare.",
           "{k} threw up twice — stomach bug going around. Rice porridge for dinner.", "Doctor says {k} has an ear infection; antibiotics for a week."]
sick_ko = ["{k} 열이 38.{d}도까지 올랐다. 해열제 먹이고 꼭 안아줬다.", "{k} 콧물이랑 기침 때문에 어린이집 쉬었다.", "{k} 장염인지 두 번 토했다. 저녁은 흰죽.", "병원에서 {k} 중이염이래. 일주일 항생제."]
ko_name = {"Minji": "민지", "Junho": "준호"}
sick_days = {"Minji": [], "Junho": []}
for kid, n in [("Minji", 8), ("Junho", 14)]:
    for _ in range(n):
        # Illness clusters in winter.
        while True:
            day = rand_day()
            if day.month in (11, 12, 1, 2, 3) or rng.random() < 0.2:
                break
        lang = "ko" if rng.random() < 0.4 else "en"
        tpl = rng.choice(sick_ko if lang == "ko" else sick_en)
        text = tpl.format(k=ko_name[kid] if lang == "ko" else kid, d=rng.randrange(2, 9))
        sick_days[kid].append((day, add(day, text, [kid], ["sick"], lang)))

outings = [("the zoo", "동물원", "zoo"), ("the science museum", "과학관", "museum"), ("Grandma's house", "할머니 댁", "grandma"), ("the playground by the river", "강변 놀이터", "playground")]
outing_ids = {}
for place_en, place_ko, tag in outings:
    for _ in range(6):
        day = rand_day()
        kids = rng.choice([["Minji"], ["Junho"], ["Minji", "Junho"]])
        lang = "ko" if rng.random() < 0.4 else "en"
        names = " and ".join(kids) if lang == "en" else "랑 ".join(ko_name[k] for k in kids)
        text = (f"We went to {place_en} with {names}. " + rng.choice(["Everyone was tired but happy.", "It rained in the afternoon.", "We stayed until closing."])) if lang == "en" \
            else (f"{names}랑 {place_ko}에 갔다. " + rng.choice(["다들 피곤했지만 즐거웠다.", "오후에 비가 왔다.", "문 닫을 때까지 놀았다."]))
        outing_ids.setdefault(tag, []).append((day, kids, add(day, text, kids, ["outing", tag], lang)))

lessons = [("Minji", "piano lesson", "피아노 학원"), ("Minji", "taekwondo class", "태권도"), ("Junho", "music class at daycare", "어린이집 음악 시간")]
for kid, en, ko in lessons:
    for _ in range(8):
        day = rand_day()
        lang = "ko" if rng.random() < 0.4 else "en"
        text = f"{kid} had {en} today and " + rng.choice(["practised hard.", "did not want to go.", "showed us what she learned." if kid == "Minji" else "showed us a new song."]) if lang == "en" \
            else f"오늘 {ko_name[kid]} {ko} 갔다. " + rng.choice(["열심히 했다.", "가기 싫어했다.", "배운 걸 보여줬다."])
        add(day, text, [kid], ["lesson", en], lang)

everyday_en = ["{k} helped make pancakes and got flour everywhere.", "{k} built a tower of blocks taller than the chair.", "{k} drew a rainbow with seven colours.",
               "{k} fed the neighbour's cat through the fence.", "{k} insisted on wearing rain boots on a sunny day.", "{k} asked why the moon follows our car.",
               "{k} had a play date with a friend from school.", "{k} fell asleep in the car on the way home."]
everyday_ko = ["{k}가 팬케이크 만드는 걸 도와줬는데 밀가루 범벅.", "{k}가 의자보다 높은 블록 탑을 쌓았다.", "{k}가 일곱 가지 색 무지개를 그렸다.",
               "{k}가 옆집 고양이한테 밥을 줬다.", "{k}가 맑은 날에 장화를 신겠다고 고집.", "{k}가 달이 왜 우리 차를 따라오냐고 물었다.",
               "{k}가 학교 친구랑 놀았다.", "{k}가 집에 오는 차에서 잠들었다."]
while len(entries) < 320:
    day = rand_day()
    kid = rng.choice(["Minji", "Junho"])
    lang = "ko" if rng.random() < 0.4 else "en"
    t = rng.randrange(len(everyday_en))
    tpl = (everyday_ko if lang == "ko" else everyday_en)[t]
    add(day, tpl.format(k=ko_name[kid] if lang == "ko" else kid), [kid], ["everyday", f"everyday-{t}"], lang)

# ---- Questions computed from the journal -----------------------------------
def between(a, b, pred):
    return [e["id"] for e in entries if a <= dt.date.fromisoformat(e["date"]) <= b and pred(e)]

# Counts (illness per winter) and their Korean twins.
for kid in ["Minji", "Junho"]:
    for y in [2024, 2025]:
        a, b = dt.date(y, 12, 1), dt.date(y + 1, 2, 28)
        ids = between(a, b, lambda e: kid in e["children"] and "sick" in e["tags"])
        if ids:
            ask(f"How many times was {kid} sick in the winter of {y}-{y+1}?", ids, "count")
            ask(f"{y}년 겨울에 {ko_name[kid]}가 몇 번 아팠어?", ids, "count", "ko")

# First / last time at each outing place.
for tag, rows in outing_ids.items():
    rows = sorted(rows)
    place_en = {"zoo": "the zoo", "museum": "the science museum", "grandma": "Grandma's house", "playground": "the riverside playground"}[tag]
    place_ko = {"zoo": "동물원", "museum": "과학관", "grandma": "할머니 댁", "playground": "강변 놀이터"}[tag]
    ask(f"When did we first go to {place_en}?", [rows[0][2]], "first_last")
    ask(f"When was the last time we went to {place_en}?", [rows[-1][2]], "first_last")
    ask(f"{place_ko}에 마지막으로 간 게 언제야?", [rows[-1][2]], "first_last", "ko")
    for kid in ["Minji", "Junho"]:
        mine = [r for r in rows if kid in r[1]]
        if mine:
            ask(f"When did {kid} first visit {place_en}?", [mine[0][2]], "first_last")

# Periods: a month, per child.
for y, m in [(2025, 1), (2025, 4), (2025, 7), (2025, 10), (2026, 1), (2026, 4), (2026, 7), (2026, 9), (2025, 12), (2026, 2)]:
    a = dt.date(y, m, 1)
    b = (dt.date(y + (m // 12), m % 12 + 1, 1) - dt.timedelta(days=1))
    month = a.strftime("%B %Y")
    for kid in ["Minji", "Junho"]:
        ids = between(a, b, lambda e: kid in e["children"])
        if ids:
            ask(f"What did {kid} do in {month}?", ids, "period")
            ask(f"{y}년 {m}월에 {ko_name[kid]}는 뭐 했어?", ids, "period", "ko")

# Per child, by activity.
for kid, en, ko in lessons:
    ids = [e["id"] for e in entries if kid in e["children"] and en in e["tags"]]
    ask(f"How are {kid}'s {en}s going?", ids, "per_child")
    ask(f"{ko_name[kid]} {ko}는 어때?", ids, "per_child", "ko")
for kid in ["Minji", "Junho"]:
    ids = [e["id"] for e in entries if kid in e["children"] and "sick" in e["tags"]]
    ask(f"Has {kid} had any ear infections or fevers?", ids, "per_child")

# Everyday moments, asked in other words (every entry of that kind counts).
everyday_q = [("Who made a mess cooking breakfast?", "아침 만들다가 밀가루 범벅 된 날들"), ("When did the kids stack blocks really high?", "블록을 높이 쌓은 날"),
              ("Which drawings had all the colours of a rainbow?", "무지개 그림 그린 날"), ("When did the kids feed the cat next door?", "옆집 고양이 밥 준 적"),
              ("Who wore wellies when it wasn't raining?", "맑은 날 장화 신겠다고 한 날"), ("Which kid wondered why the moon chases us?", "달이 차를 따라온다고 물어본 날"),
              ("When did the kids have friends over to play?", "친구랑 놀았던 날"), ("Who dozed off on the drive home?", "차에서 잠든 날")]
for t, (q_en, q_ko) in enumerate(everyday_q):
    ids = [e["id"] for e in entries if f"everyday-{t}" in e["tags"]]
    if ids:
        ask(q_en, ids, "paraphrase_many")
        ask(q_ko, ids, "paraphrase_many", "ko")

# Counts over a calendar year.
for kid in ["Minji", "Junho"]:
    for y in [2025, 2026]:
        ids = between(dt.date(y, 1, 1), dt.date(y, 12, 31), lambda e: kid in e["children"] and "sick" in e["tags"])
        if ids:
            ask(f"How often was {kid} ill in {y}?", ids, "count")
            ask(f"{y}년에 {ko_name[kid]}가 아팠던 날은 며칠이야?", ids, "count", "ko")

# Unanswerable: nothing in the journal is about these.
for q, lang in [("When did Minji go skiing?", "en"), ("What did Junho get for his first haircut?", "en"), ("Did we ever visit Disneyland?", "en"),
                ("When did Minji break her arm?", "en"), ("What is Junho's favourite football team?", "en"), ("When did we adopt a puppy?", "en"),
                ("민지가 스키 탄 적 있어?", "ko"), ("준호 첫 이발 언제 했어?", "ko"), ("우리 디즈니랜드 간 적 있나?", "ko"), ("민지 팔 부러진 게 언제야?", "ko"),
                ("What did Minji say about volcanoes?", "en"), ("When did Junho learn to ride a scooter?", "en"), ("Where did we go camping?", "en"),
                ("민지가 바이올린 배운 적 있어?", "ko"), ("준호가 처음 수영한 날은?", "ko"), ("When did the kids meet Santa at the mall?", "en")]:
    ask(q, [], "unanswerable", lang)

assert len(entries) >= 300 and len(questions) >= 150, (len(entries), len(questions))
json.dump({"schema": "dadly-eval/1", "today": TODAY,
           "members": [{"name": "Minji", "aliases": ["민지"], "birth_date": "2018-09-14"}, {"name": "Junho", "aliases": ["준호"], "birth_date": "2023-10-12"}],
           "entries": sorted(entries, key=lambda e: e["date"]), "questions": questions},
          open("eval/journal.json", "w"), ensure_ascii=False, indent=1)
print(len(entries), "entries,", len(questions), "questions:", {t: sum(q["type"] == t for q in questions) for t in sorted({q["type"] for q in questions})})
