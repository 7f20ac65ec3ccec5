-- Every request is a new simulated user: POST <path> with the next pre-minted token of a file.
-- Usage: wrk -t1 -cN -dD -s tokens.lua URL -- <token file> <path>
-- At the end it prints one line "BENCH {json}" that bench/load.py parses. A run that needed more
-- tokens than the file holds starts over (repeat users) and says so in "tokens_wrapped".

local tokens = {}
local count = 0
local nexti = 1
local head = ""
local tail = "\r\nContent-Length: 0\r\n\r\n"
used = 0     -- globals: done() reads them from each thread with thread:get()
wrapped = 0

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = args[1]
  local path = args[2] or "/"
  for line in io.lines(file) do
    if #line > 0 then
      count = count + 1
      tokens[count] = line
    end
  end
  if count == 0 then
    error("no tokens in " .. tostring(file))
  end
  head = "POST " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
end

function request()
  if nexti > count then
    nexti = 1
    wrapped = wrapped + 1
  end
  local token = tokens[nexti]
  nexti = nexti + 1
  used = used + 1
  return head .. token .. tail
end

function done(summary, latency, requests)
  local total_used, total_wrapped = 0, 0
  for _, thread in ipairs(threads) do
    total_used = total_used + thread:get("used")
    total_wrapped = total_wrapped + thread:get("wrapped")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d,"tokens_used":%d,"tokens_wrapped":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, total_used, total_wrapped))
end
