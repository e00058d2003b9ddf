# Asks a real chat model Dadly's own plan prompt (prompts/plan.md, the same
# JSON schema and output bound) for the eval's count / first-last / per-child
# questions, and scores the plans: kind, children, and how many Dadly would
# accept (the rest fall back to the rule-based planner).
#
#   python3 bench/plan_probe.py            # llama-server on 127.0.0.1:8081 (LOCAL-MODELS.md)
#
# Run from the repository root. Standard library only.
import json, re, time, urllib.request
d = json.load(open('eval/journal.json'))
tpl = open('prompts/plan.md').read().split('---', 2)[2].strip()
system, user = [p.strip() for p in tpl.split('===')]
members = d['members']
children = '; '.join(' / '.join([m['name']] + m.get('aliases', [])) for m in members)
today = '2026-11-01 (Sunday)'
schema = {"type": "object", "properties": {"search_text": {"type": "string"}, "children": {"type": "array", "items": {"type": "string"}}, "from": {"type": ["string", "null"]}, "to": {"type": ["string", "null"]}, "kind": {"type": "string", "enum": ["lookup", "period", "count", "first", "last"]}}, "required": ["search_text", "children", "from", "to", "kind"], "additionalProperties": False}
def fill(s, q): return s.replace('{{today}}', today).replace('{{children}}', children).replace('{{earlier}}', '(none)').replace('{{question}}', q)
def want_kind(q):
    t = q['type']; s = q['question'].lower()
    if t == 'count': return 'count'
    if t == 'first_last': return 'last' if ('last' in s or '마지막' in s or '최근' in s) else 'first'
    return None
def want_children(q):
    return sorted(m['name'] for m in members if any(n.lower() in q['question'].lower() for n in [m['name']] + m.get('aliases', [])))
rows = []; total = 0.0
for q in d['questions']:
    if q['type'] not in ('count', 'first_last', 'per_child'): continue
    body = {"model": "gpt-4o-mini", "temperature": 0, "max_completion_tokens": 256,
            "messages": [{"role": "system", "content": fill(system, q['question'])}, {"role": "user", "content": fill(user, q['question'])}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "query_plan", "strict": True, "schema": schema}}}
    t = time.time()
    r = json.load(urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:8081/v1/chat/completions', json.dumps(body).encode(), {'content-type': 'application/json'}), timeout=120))
    total += time.time() - t
    c = r['choices'][0]['message']['content']
    try: p = json.loads(c)
    except Exception: p = None
    rows.append((q, p, r['choices'][0]['finish_reason']))
ok = lambda f: sum(1 for x in rows if f(x))
n = len(rows)
print(f"questions: {n}, seconds per plan: {total/n:.1f}")
print("valid JSON:", ok(lambda x: x[1] is not None), "/", n, "; cut at the bound:", ok(lambda x: x[2] == 'length'))
for t in ('count', 'first_last'):
    sub = [x for x in rows if x[0]['type'] == t]
    print(f"kind right ({t}):", sum(1 for x in sub if x[1] and x[1].get('kind') == want_kind(x[0])), "/", len(sub))
print("children right:", ok(lambda x: x[1] is not None and sorted(x[1].get('children') or []) == want_children(x[0])), "/", n)
for lang in ('en', 'ko'):
    sub = [x for x in rows if x[0]['lang'] == lang]
    print(f"  {lang}: kind right", sum(1 for x in sub if x[1] and want_kind(x[0]) and x[1].get('kind') == want_kind(x[0])), "/", sum(1 for x in sub if want_kind(x[0])), "; children right", sum(1 for x in sub if x[1] and sorted(x[1].get('children') or []) == want_children(x[0])), "/", len(sub))
for q, p, f in rows[:6] + rows[16:19]:
    print(q['question'], '->', json.dumps(p, ensure_ascii=False))
import datetime
names = {n.lower() for m in members for n in [m['name']] + m.get('aliases', [])}
def accepted(p):
    if p is None: return False
    st = p.get('search_text')
    if not isinstance(st, str) or len(st.strip()) > 200: return False
    if any(not isinstance(c, str) or c.strip().lower() not in names for c in p.get('children') or []): return False
    def day(v):
        if v is None: return True, None
        try: return True, datetime.date.fromisoformat(v.strip())
        except Exception: return False, None
    (a, s), (b, e) = day(p.get('from')), day(p.get('to'))
    if not (a and b): return False
    if s and e and not s < e: return False
    if e and not s: return False
    return p.get('kind') in ('lookup', 'period', 'count', 'first', 'last')
acc = [x for x in rows if accepted(x[1])]
print("plans Dadly would use (the rest fall back to the rules):", len(acc), "/", n, "; of those with the right kind:", sum(1 for x in acc if want_kind(x[0]) and x[1]['kind'] == want_kind(x[0])), "/", sum(1 for x in acc if want_kind(x[0])))
for q, p, f in acc: print("  used:", q['question'], '->', json.dumps(p, ensure_ascii=False))
