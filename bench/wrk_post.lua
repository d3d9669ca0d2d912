-- wrk script: POST one file as the body of every request, with a bearer token, and
-- print the figures as one JSON line at the end (read by bench/load.py).
-- Environment: BENCH_BODY (file path), BENCH_TOKEN, BENCH_CONTENT_TYPE.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/pdf"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

-- BENCH_UNIQUE=1: every request gets a distinct document. The body holds a 32-byte
-- marker (tests/fixtures/pdfs.UniquePdfs); it is replaced by a 32-character counter, so
-- every offset in the file stays valid. BENCH_RUN keeps runs apart.
local marker = string.rep("X", 32)
local unique = os.getenv("BENCH_UNIQUE") == "1"
local run = tonumber(os.getenv("BENCH_RUN") or "0")
local counter = 0

if unique then
  assert(wrk.body:find(marker, 1, true), "the body has no marker")
  local head_end = wrk.body:find(marker, 1, true)
  local head, tail = wrk.body:sub(1, head_end - 1), wrk.body:sub(head_end + 32)
  request = function()
    counter = counter + 1
    local body = head .. string.format("%016x%016x", run, counter) .. tail
    return wrk.format(nil, nil, nil, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "errors_connect": %d, ' ..
    '"errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
