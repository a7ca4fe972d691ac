"""wrk scripts of bench/run.py: every script counts responses by status and prints one JSON line.

wrk's own "Requests/sec" counts every response, errors included, so a fast error would flatter
a target: `done()` prints the status counts, socket errors and latency percentiles on a line
starting with RESULT_MARK, and bench/run.py computes rates from the 2xx responses only.
"""

from __future__ import annotations

RESULT_MARK = "BENCH_RESULT "

# Status counting and the result line, shared by every script. wrk runs each thread in its
# own Lua state: setup() keeps the threads, done() adds up their tables.
COUNTING = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads - 1)  -- a global of the thread's own Lua state: 0, 1, ...
end
statuses = {}
late = 0
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local counts, lates = {}, 0
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses") or {}) do
      counts[tostring(code)] = (counts[tostring(code)] or 0) + n
    end
    lates = lates + (thread:get("late") or 0)
  end
  local parts = {}
  for code, n in pairs(counts) do
    table.insert(parts, string.format('"%s":%d', code, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"statuses":{%s},"connect":%d,"read":%d,'
    .. '"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"late":%d}\\n',
    summary.requests, summary.duration, table.concat(parts, ","), e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(99), latency.max, lates))
end
"""

# A constant arrival rate without wrk2 (not packaged): each thread owns a schedule of
# BENCH_RATE / BENCH_THREADS requests per second; a connection that is free claims the next
# slot and waits for it (delay() runs before every request). A slot claimed more than
# LATE_MS after its time means every connection was busy and the schedule slipped: counted
# as late, and bench/run.py refuses a latency figure when more than 1% were late (the
# latency of a late request is measured from when it was sent, not when it was due).
CONSTANT_RATE = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
local interval_ms = 1000 * tonumber(os.getenv("BENCH_THREADS"))
  / tonumber(os.getenv("BENCH_RATE"))
local late_ms = 5
local next_at = nil
function delay()
  local now = now_ms()
  if next_at == nil then
    next_at = now + math.random() * interval_ms
  end
  next_at = next_at + interval_ms
  local wait = next_at - now
  if wait < -late_ms then
    late = late + 1
  end
  if wait <= 0 then
    return 0
  end
  return math.floor(wait)
end
"""

# POST /api/orders: one line of quantity 1 (or BENCH_MAX_QUANTITY at most) of a random SKU
# among BENCH_PREFIX1..BENCH_PREFIX<BENCH_SKUS>, a fresh idempotency key each time.
ORDER = """
local skus = tonumber(os.getenv("BENCH_SKUS"))
local prefix = os.getenv("BENCH_PREFIX")
local max_quantity = tonumber(os.getenv("BENCH_MAX_QUANTITY") or "1")
local token = os.getenv("BENCH_TOKEN")
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local sequence = 0
local function order_request()
  sequence = sequence + 1
  local sku = prefix .. math.random(1, skus)
  local key = string.format("%x-%x-%x", math.random(0, 2^30), sequence, math.random(0, 2^30))
  local body = '{"items":[{"id":"' .. sku .. '","quantity":'
    .. math.random(1, max_quantity) .. '}],"payment_token":"tok_success"}'
  return wrk.format("POST", "/api/orders", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = key,
  }, body)
end
request = order_request
"""

# A shop's mixed traffic: product pages over every bench SKU, the first BENCH_PAGES listing
# pages, orders.
MIXED = (
    ORDER
    + """
local pages = tonumber(os.getenv("BENCH_PAGES"))
request = function()
  local r = math.random()
  if r < 0.5 then
    return wrk.format("GET", "/api/products/" .. prefix .. math.random(1, skus))
  elseif r < 0.85 then
    return wrk.format("GET", "/api/products?page_size=20&page=" .. math.random(1, pages))
  end
  return order_request()
end
"""
)

# POST /api/carts/<token>/checkout: each request checks out a cart of its own, ready in the
# template (bench/run.py CHECKOUT_SEED), as its customer. BENCH_CHECKOUTS names a file of
# "<cart token> <access token>" lines; thread i takes lines i, i + threads, ... A thread
# that runs out sends a cart that does not exist, which fails the run.
CHECKOUT = """
local carts = {}
local taken = 0
function init(args)
  local threads, n = tonumber(os.getenv("BENCH_THREADS")), 0
  for line in io.lines(os.getenv("BENCH_CHECKOUTS")) do
    if n % threads == id then
      table.insert(carts, line)
    end
    n = n + 1
  end
end
request = function()
  taken = taken + 1
  local cart, access = string.match(carts[taken] or "", "(%S+) (%S+)")
  if cart == nil then
    cart, access = "out-of-prepared-carts", "none"
  end
  return wrk.format("POST", "/api/carts/" .. cart .. "/checkout", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. access,
    ["Idempotency-Key"] = string.format("checkout-%s", cart),
  }, '{"payment_token":"tok_success"}')
end
"""

POST = 'wrk.method = "POST"\n'
