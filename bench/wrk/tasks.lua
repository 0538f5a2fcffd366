-- Closed-loop load on one endpoint of the Taskwatch task API, run by `cargo xtask bench` (xtask/src/bench) with
-- wrk: a light generator in C, so that on two cores the backend, not the generator, takes the CPU. (k6 spends
-- more CPU per request than the backend does; it stays for the open-loop mixed scenario.)
--
-- Environment:
--   BENCH_ENDPOINT      create | get | list | complete
--   BENCH_TOKENS        comma-separated bearer tokens, one API user each; requests take them in turn
--   BENCH_TASKS_FILE    get and complete: lines `user_index,task_id` (user_index counts from 0 into BENCH_TOKENS)
--   BENCH_THREADS       wrk's --threads, so each thread takes every BENCH_THREADS-th task of the file
--   BENCH_SUMMARY_PATH  where `done` writes the figures, in the JSON shape xtask also reads from k6
--
-- Each connection sends its next request as soon as the previous one is answered. `complete` walks its thread's
-- share of the open tasks once; a task completed twice answers 409 and counts as failed, which the report shows.

local endpoint = os.getenv("BENCH_ENDPOINT")
local tokens = {}
for token in string.gmatch(os.getenv("BENCH_TOKENS") or "", "[^,]+") do
  tokens[#tokens + 1] = token
end

local counter = 0
local tasks = {}
local next_task = 1

-- Runs once per thread in the main Lua state: numbers the threads so each takes its own share of the tasks.
local thread_count = 0
function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

local function read_tasks(thread_index, thread_total)
  local path = os.getenv("BENCH_TASKS_FILE")
  if not path then
    error("BENCH_TASKS_FILE is required for " .. endpoint)
  end
  local line_number = 0
  for line in io.lines(path) do
    if line_number % thread_total == thread_index then
      local user, id = string.match(line, "^(%d+),(.+)$")
      local token = user and tokens[tonumber(user) + 1]
      if not token then
        error(path .. ":" .. (line_number + 1) .. ": not `user_index,task_id` of one of the BENCH_TOKENS: " .. line)
      end
      tasks[#tasks + 1] = { token = token, id = id }
    end
    line_number = line_number + 1
  end
  if #tasks == 0 then
    error("no tasks to " .. endpoint .. " in " .. path .. "; run create first")
  end
end

function init(args)
  if #tokens == 0 then
    error("BENCH_TOKENS is empty")
  end
  if endpoint == "get" or endpoint == "complete" then
    read_tasks(wrk.thread:get("thread_index"), tonumber(os.getenv("BENCH_THREADS")))
  end
end

local function authorised(token, extra)
  local headers = { ["Authorization"] = "Bearer " .. token }
  for name, value in pairs(extra or {}) do
    headers[name] = value
  end
  return headers
end

local priorities = { "low", "medium", "high", "urgent" }

function request()
  counter = counter + 1
  if endpoint == "create" then
    local user = counter % #tokens
    local body = string.format(
      '{"title":"Benchmark task %d-%d","description":"Created by the wrk load of cargo xtask bench.",'
        .. '"priority":"%s","labels":["bench","vu-%d"],"due_at":"%s","time_zone":"Europe/Berlin",'
        .. '"reminders":[{"kind":"before_due","minutes":15}]}',
      user,
      counter,
      priorities[counter % 4 + 1],
      user % 8,
      os.date("!%Y-%m-%dT%H:00:00Z", os.time() + ((counter % 720) + 1) * 3600)
    )
    return wrk.format("POST", "/v1/tasks", authorised(tokens[user + 1], { ["Content-Type"] = "application/json" }), body)
  elseif endpoint == "get" then
    local task = tasks[math.random(#tasks)]
    return wrk.format("GET", "/v1/tasks/" .. task.id, authorised(task.token))
  elseif endpoint == "list" then
    return wrk.format("GET", "/v1/tasks?status=open", authorised(tokens[counter % #tokens + 1]))
  elseif endpoint == "complete" then
    local task = tasks[next_task]
    next_task = next_task % #tasks + 1
    return wrk.format("POST", "/v1/tasks/" .. task.id .. "/complete", authorised(task.token))
  end
  error("unknown BENCH_ENDPOINT " .. tostring(endpoint))
end

-- The figures, in the shape of the k6 script's summary (bench/k6/tasks.js `summarise`).
function done(summary, latency, requests)
  local errors = summary.errors
  local failed = errors.connect + errors.read + errors.write + errors.status + errors.timeout
  local figures = string.format(
    '{"requests":%d,"failed":%d,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}',
    summary.requests,
    failed,
    latency:percentile(50) / 1000,
    latency:percentile(90) / 1000,
    latency:percentile(99) / 1000,
    latency.max / 1000
  )
  local file = assert(io.open(os.getenv("BENCH_SUMMARY_PATH"), "w"))
  file:write(string.format(
    '{"scenario":"%s","endpoints":{"%s":%s},"all":%s,"total_requests":%d,"active_window_ms":%.3f,'
      .. '"dropped_iterations":0,"max_vus":0}\n',
    endpoint,
    endpoint,
    figures,
    figures,
    summary.requests,
    summary.duration / 1000
  ))
  file:close()
end
