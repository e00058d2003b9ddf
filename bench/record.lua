-- wrk script: POST /v1/chat with a different note each time (three children,
-- ten things, a counter), as the in-process loadtest sends.
local kids = { "Minji", "Junho", "Sora" }
local things = {
  "lost a tooth at breakfast", "rode a bike without training wheels", "painted a dragon at school", "cried at the dentist",
  "built a lego castle with grandpa", "sang a song about rain", "learned to whistle", "read a whole book alone",
  "went swimming with the class", "planted sunflowers in the garden",
}
local token = os.getenv("TOKEN")
local n = 0
local id = 0
local threads = {}

function setup(thread)
  id = id + 1
  thread:set("id", id)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
  failed = 0
end

function request()
  n = n + 1
  local body = string.format('{"message":"%s %s (note %d-%d).","chat_id":"load-%d"}', kids[n % 3 + 1], things[n % 10 + 1], id, n, id)
  return wrk.format(nil, "/v1/chat", nil, body)
end

function response(status, headers, body)
  if status ~= 200 then failed = failed + 1 end
end

function done(summary, latency, requests)
  local failures = 0
  for _, t in ipairs(threads) do failures = failures + t:get("failed") end
  io.write(string.format("| %.0f req/s | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %d |\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, failures))
end
