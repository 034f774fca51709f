-- wrk script of bench/_wrk.py: POSTs a rotation of JSON bodies, one connection per thread.
--
-- Arguments (after `--`): bodies file (one JSON body per line; thread t of n sends the lines
-- whose index modulo n is t, in turn), seconds, largest number of answers per thread (0: no
-- limit), number of threads, path, Authorization header value ("" for none), output prefix.
--
-- Each thread stops itself on the answer that reaches its deadline or its limit, so that no
-- request is left in flight when wrk stops: every request sent was answered and counted, and
-- the service's audit rows can be compared with the answers exactly. It then writes
-- `<prefix><thread>`: requests answered, answered 2xx, first and last time (s), and every
-- request's latency (s, from the request's first byte written to its answer's last byte read).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("bench_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) * 1e-9
end

local next_id, first_thread = 0, nil

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  first_thread = first_thread or thread
end

function init(args)
  local threads = tonumber(args[4])
  local headers = { ["Content-Type"] = "application/json" }
  if args[6] ~= "" then
    headers["Authorization"] = args[6]
  end
  bodies = {}
  local index = 0
  for line in io.lines(args[1]) do
    if index % threads == id then
      bodies[#bodies + 1] = wrk.format("POST", args[5], headers, line)
    end
    index = index + 1
  end
  limit = tonumber(args[3])
  prefix = args[7]
  answered, succeeded, latencies = 0, 0, {}
  started = now()
  deadline = started + tonumber(args[2])
end

-- The next body is chosen by the answers counted, not by the calls: wrk calls request() once
-- more on the first thread to check the script, before any is sent.
function request()
  sent = now()
  return bodies[answered % #bodies + 1]
end

function response(status, headers, body)
  local finished = now()
  answered = answered + 1
  latencies[answered] = finished - sent
  if status >= 200 and status < 300 then
    succeeded = succeeded + 1
  end
  if finished >= deadline or (limit > 0 and answered >= limit) then
    local out = io.open(prefix .. id .. ".part", "w")
    out:write(string.format("%d %d %.6f %.6f\n", answered, succeeded, started, finished))
    out:write(table.concat(latencies, "\n"), "\n")
    out:close()
    os.rename(prefix .. id .. ".part", prefix .. id)
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local out = io.open(first_thread:get("prefix") .. "summary", "w")
  local errors = summary.errors
  out:write(
    string.format(
      "%d %d %d %d %d %d\n",
      summary.requests,
      errors.connect,
      errors.read,
      errors.write,
      errors.status,
      errors.timeout
    )
  )
  out:close()
end
