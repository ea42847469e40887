-- framing: the stream decoder (NDJSON for Ollama, SSE for OpenAI-compatible servers and
-- llama.cpp), through planhost.framing.decode.
--
-- Every fixture in tests/fixtures/streams is decoded whole and checked against what it must
-- give (the answer text, the done stats, the error); then it is replayed at every piece size
-- 1..31, which must give the same text (compared after concatenation), the same other events
-- and the same status, with every text piece handed over in the feed that completed its line.
-- The synthetic cases at the end run through the same replay.
local framing = require("planhost").framing

local MAX_PIECE = 31

local function repo_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local root = src:gsub("[^/]*$", ""):gsub("/?tests/unit/?$", "")
  return root == "" and "." or root
end

local STREAMS = repo_root() .. "/tests/fixtures/streams/"

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function list_fixtures()
  local names = {}
  local ok, lfs = pcall(require, "lfs")
  if ok then
    for name in lfs.dir(STREAMS) do names[#names + 1] = name end
  else
    local p = assert(io.popen("ls " .. STREAMS))
    for name in p:lines() do names[#names + 1] = name end
    p:close()
  end
  local out = {}
  for _, name in ipairs(names) do
    if name:match("%.ndjson$") or name:match("%.sse$") then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

-- ---- running and comparing ---------------------------------------------------------------

-- One run reduced to what must not depend on the piece size.
local function summary(events, status)
  local text, others, empty = {}, {}, 0
  for _, ev in ipairs(events) do
    if ev.kind == "text" then
      text[#text + 1] = ev.text
      if ev.text == "" then empty = empty + 1 end
    else
      others[#others + 1] = ev
    end
  end
  return { text = table.concat(text), others = others, status = status, empty = empty }
end

local function text_of(events, n)
  local t = {}
  for i = 1, n do
    if events[i].kind == "text" then t[#t + 1] = events[i].text end
  end
  return table.concat(t)
end

-- The text a decoder must have handed over once the bytes up to each LF are in:
-- at_lf[pos] for every LF position pos (what a whole feed of body:sub(1, pos) emits).
local function text_at_line_ends(api, body, opts)
  local at = {}
  for pos in body:gmatch("()\n") do
    -- all of its text, the finish's included: a prefix that ends at a line end has no cut
    -- line for the finish to decode, so this does not depend on when the text was handed over
    local events = framing.decode(api, body:sub(1, pos), opts)
    at[pos] = text_of(events, #events)
  end
  return at
end

-- After each feed of `piece` bytes, the text so far must be exactly what the complete
-- lines so far say: nothing held back past its line end, nothing before it.
local function check_timing(api, body, piece, events, feeds, at_lf)
  local last_lf, pos = nil, 0
  local lfs = {}
  for p in body:gmatch("()\n") do lfs[#lfs + 1] = p end
  local li = 0
  for k, count in ipairs(feeds) do
    pos = math.min(k * piece, #body)
    while lfs[li + 1] and lfs[li + 1] <= pos do li = li + 1 end
    last_lf = lfs[li]
    local want = last_lf and at_lf[last_lf] or ""
    local got = text_of(events, count)
    if got ~= want then
      error(("piece size %d, after byte %d: text so far %q, want %q"):format(piece, pos,
        got:sub(-40), want:sub(-40)), 2)
    end
  end
end

-- Decodes body whole and at every piece size; returns the whole summary after checking
-- that every size agrees with it and hands text over on time.
local function replay(api, body, opts)
  opts = opts or {}
  local whole_events, whole_status = framing.decode(api, body, opts)
  local whole = summary(whole_events, whole_status)
  assert.are.equal(0, whole.empty, "an empty text piece was emitted")
  local at_lf = text_at_line_ends(api, body, opts)
  for n = 1, MAX_PIECE do
    local o = { piece = n }
    for k, v in pairs(opts) do o[k] = v end
    local events, status, feeds = framing.decode(api, body, o)
    local got = summary(events, status)
    if not require("luassert.util").deepcompare(got, whole, true) then
      assert.same(whole, got, ("piece size %d differs from the whole feed"):format(n))
    end
    check_timing(api, body, n, events, feeds, at_lf)
  end
  return whole
end

local function near(a, b)
  return a == b or (type(a) == "number" and type(b) == "number"
    and math.abs(a - b) <= 1e-9 * math.max(1, math.abs(b)))
end

local function check_done(want, got)
  assert.are.equal("done", got.kind)
  for _, k in ipairs({ "prompt_tokens", "completion_tokens", "cached_tokens", "prompt_ms",
                       "gen_ms", "total_ms", "load_ms", "done_reason" }) do
    if not near(got[k], want[k]) then
      error(("done.%s = %s, want %s"):format(k, tostring(got[k]), tostring(want[k])), 2)
    end
  end
end

-- ---- what each fixture must give ------------------------------------------------------------

local PLAN_SAY = '{"plan_id":"p1","steps":[{"act":"MoveTo","x":10,"y":5,"speed":"run"},'
  .. '{"act":"ThrowSmoke","x":12,"y":2},{"act":"Attack","target_id":3}],'
  .. '"say":"Je couvre l\'entrée <porte B> & toi, fonce — 前進する!"}'
local PLAN_PRETTY = '{\n  "plan_id": "p2",\n  "steps": [\n    {\n      "act": "TakeCover",\n'
  .. '      "x": 6,\n      "y": 1\n    },\n    {\n      "act": "Reload"\n    },\n    {\n'
  .. '      "act": "Scan",\n      "radius": 12.5,\n'
  .. '      "why": "L\'ennemi est à découvert — \\"tenez la ligne\\"."\n    }\n  ]\n}'
local PLAN_REASON = '{"plan_id":"p3","reasoning":"Enemy 3 holds the door.\\nSmoke first, '
  .. 'then flank: \\"go left\\" — café déjà vu 🙂","steps":[{"act":"ThrowSmoke","x":15,"y":8},'
  .. '{"act":"Strafe","target_id":3,"direction":"left"},{"act":"AimedShot","target_id":3}]}'
local PLAN_BATCH = '[{"agent_id":"c2","plan_id":"b1","steps":[{"act":"MoveTo","x":4,"y":9,'
  .. '"speed":"walk"},{"act":"Wait","duration":1.5}]},{"agent_id":"c7","plan_id":"b2",'
  .. '"steps":[{"act":"Heal"},{"act":"MarkTarget","target_id":11}]}]'

local ENDED = "the stream ended before the server said it was done"

local EXPECT = {
  ["ollama_chat_plan.ndjson"] = { api = "ollama", text = PLAN_SAY, done = {
    prompt_tokens = 386, completion_tokens = 81, prompt_ms = 212.881, gen_ms = 1598.452,
    total_ms = 1843.021577, load_ms = 20.411083, done_reason = "stop" } },
  ["ollama_chat_pretty_crlf.ndjson"] = { api = "ollama", text = PLAN_PRETTY, done = {
    prompt_tokens = 402, completion_tokens = 109, prompt_ms = 230.114, gen_ms = 1951.003,
    total_ms = 2210.335069, load_ms = 18.227416, done_reason = "stop" } },
  ["ollama_chat_thinking.ndjson"] = { api = "ollama", text = PLAN_BATCH, done = {
    prompt_tokens = 512, completion_tokens = 105, prompt_ms = 301.552, gen_ms = 2983.114,
    total_ms = 3312.95012, load_ms = 19.663211, done_reason = "stop" } },
  ["ollama_chat_no_final_newline.ndjson"] = { api = "ollama", text = PLAN_SAY, done = {
    prompt_tokens = 386, completion_tokens = 81, prompt_ms = 209.114, gen_ms = 1550.1,
    total_ms = 1790.334812, load_ms = 21.004399, done_reason = "stop" } },
  ["ollama_chat_error.ndjson"] = { api = "ollama", text = '{"plan_id":"p1","steps":[{"act":"Move',
    server_error = "an error was encountered while running the model: CUDA error: out of memory" },
  ["ollama_chat_truncated.ndjson"] = { api = "ollama",
    text = '{"plan_id":"p1","steps":[{"act":"MoveTo","x":10,"', error = ENDED },
  ["ollama_chat_cut_midline.ndjson"] = { api = "ollama", text = '{"plan_id":"p1","steps',
    error = ENDED .. ' (its last line, line 10, is cut short: {"model":"qwen2.5:7b-instruct",'
      .. '"created_at":"202...)' },
  ["ollama_generate_plan.ndjson"] = { api = "ollama-generate", text = PLAN_REASON, done = {
    prompt_tokens = 355, completion_tokens = 88, prompt_ms = 198.223, gen_ms = 2385.007,
    total_ms = 2604.118233, load_ms = 16.002541, done_reason = "stop" } },
  ["ollama_generate_length.ndjson"] = { api = "ollama-generate", text = PLAN_PRETTY:sub(1, 120),
    done = { prompt_tokens = 402, completion_tokens = 53, prompt_ms = 311.008,
      gen_ms = 1224.117, total_ms = 6402.88912, load_ms = 4850.133962, done_reason = "length" } },
  ["ollama_generate_error.ndjson"] = { api = "ollama-generate",
    text = '{"plan_id":"p3","reasoning":"Enemy 3 holds the door.\\nSmoke first,',
    server_error = "llama runner process has terminated: signal: killed" },
  ["openai_vllm_plan.sse"] = { api = "openai", text = PLAN_REASON, done = {
    prompt_tokens = 355, completion_tokens = 88, cached_tokens = 320, done_reason = "stop" } },
  ["openai_starlette_crlf.sse"] = { api = "openai", text = PLAN_REASON,
    done = { done_reason = "stop" } },
  ["openai_gateway_fields.sse"] = { api = "openai", text = PLAN_PRETTY, done = {
    prompt_tokens = 402, completion_tokens = 108, done_reason = "stop" } },
  ["openai_llamacpp_timings.sse"] = { api = "openai", text = PLAN_SAY, done = {
    prompt_tokens = 612, completion_tokens = 81, cached_tokens = 575, prompt_ms = 41.302,
    gen_ms = 1320.777, done_reason = "stop" } },
  ["openai_no_done_marker.sse"] = { api = "openai", text = PLAN_SAY,
    done = { done_reason = "stop" } },
  ["openai_error.sse"] = { api = "openai", text = '{"plan_id":"p1","steps":[{"act":"MoveTo","x',
    server_error = "The server had an error while processing your request. Sorry about that!" },
  ["openai_vllm_object_error.sse"] = { api = "openai",
    text = '{"plan_id":"p1","steps":[{"act":"MoveTo","x',
    server_error = "This model's maximum context length is 4096 tokens. However, you "
      .. "requested 4187 tokens (3931 in the messages, 256 in the completion)." },
  ["openai_truncated.sse"] = { api = "openai",
    text = '{"plan_id":"p1","steps":[{"act":"MoveTo","x":10,"y":5,"',
    error = ENDED .. ' (its last line, line 51, is cut short: '
      .. '{"id":"chatcmpl-9c1f4e7a2b3d4c5e8f60718293a4b5c6...)' },
  ["llamacpp_plan.sse"] = { api = "llamacpp", text = PLAN_REASON, done = {
    prompt_tokens = 512, completion_tokens = 88, cached_tokens = 489, prompt_ms = 112.031,
    gen_ms = 893.452, done_reason = "stop" } },
  ["llamacpp_limit_crlf.sse"] = { api = "llamacpp", text = PLAN_PRETTY:sub(1, 90), done = {
    prompt_tokens = 402, completion_tokens = 41, cached_tokens = 0, prompt_ms = 1957.54,
    gen_ms = 451.906, done_reason = "length" } },
  ["llamacpp_error_field.sse"] = { api = "llamacpp", text = '{"plan_id":"p1","steps":[{"act',
    server_error = "Input prompt is too big compared to KV size. Please try increasing KV size." },
  ["llamacpp_data_error.sse"] = { api = "llamacpp", text = '{"plan_id":"p1","steps":[{"act',
    server_error = "failed to decode the batch, n_batch = 512, ret = -3" },
  ["llamacpp_truncated.sse"] = { api = "llamacpp",
    text = '{"plan_id":"p1","steps":[{"act":"MoveTo","x":10,"y":5,"speed":"run"},{"act',
    error = ENDED .. ' (its last line, line 61, is cut short: {"index":0,"content":"\\":\\"",'
      .. '"tokens":[],"st)' },
}

-- Checks a replay summary against an expectation: text, then exactly one final event.
local function check(want, got)
  assert.are.equal(want.text, got.text)
  assert.are.equal(1, #got.others, "want exactly one done or error event")
  local last = got.others[1]
  if want.done then
    assert.are.equal("done", got.status)
    check_done(want.done, last)
  else
    assert.are.equal("error", got.status)
    assert.are.equal("error", last.kind)
    assert.are.equal(want.server_error or want.error, last.message)
    assert.are.equal(want.server_error ~= nil or nil, last.server)
  end
end

-- ---- the specs ------------------------------------------------------------------------------

describe("framing fixtures", function()
  local names = list_fixtures()

  it("has an expectation for every fixture and a fixture for every expectation", function()
    local listed = {}
    for _, name in ipairs(names) do
      listed[name] = true
      assert.is_not_nil(EXPECT[name], "no expectation for fixture " .. name)
    end
    for name in pairs(EXPECT) do
      assert.is_true(listed[name] == true, "fixture missing: " .. name)
    end
  end)

  for _, name in ipairs(names) do
    local want = EXPECT[name]
    if want then
      it(name .. " decodes the same at every piece size", function()
        check(want, replay(want.api, read_file(STREAMS .. name)))
      end)
    end
  end
end)

local function ollama_line(content, extra)
  return ('{"model":"m","created_at":"2025-03-14T09:26:53Z","message":{"role":"assistant",'
    .. '"content":%s}%s,"done":false}\n'):format(content, extra or "")
end
local OLLAMA_DONE = '{"model":"m","created_at":"2025-03-14T09:26:54Z","message":{"role":'
  .. '"assistant","content":""},"done_reason":"stop","done":true,"total_duration":5000000,'
  .. '"prompt_eval_count":3,"eval_count":2}\n'

describe("framing decoder", function()
  it("skips empty and null content pieces", function()
    local body = ollama_line('""') .. ollama_line('"a"') .. ollama_line('""')
      .. ollama_line('null') .. ollama_line('"b"') .. OLLAMA_DONE
    local got = replay("ollama", body)
    assert.are.equal("ab", got.text)
    local events = framing.decode("ollama", body)
    assert.are.equal(3, #events)
    local sse = 'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
      .. 'data: {"choices":[{"index":0,"delta":{"content":null}}]}\n\n'
      .. 'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
      .. 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    assert.are.equal(2, #framing.decode("openai", sse))
  end)

  it("ignores the bytes after the final frame", function()
    local tail = ollama_line('"late"') .. "not json at all\n" .. '{"error":"too late"}\n'
    local clean = replay("ollama", ollama_line('"a"') .. OLLAMA_DONE)
    local after = replay("ollama", ollama_line('"a"') .. OLLAMA_DONE .. tail)
    assert.same(clean, after)
    local sse = 'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\ndata: [DONE]\n\n'
    assert.same(replay("openai", sse), replay("openai", sse .. "data: {\"choices\":[{\"delta\":"
      .. "{\"content\":\"b\"}}]}\n\n<html>\n"))
    local lc = 'data: {"content":"a","stop":false}\n\ndata: {"content":"","stop":true}\n\n'
    assert.same(replay("llamacpp", lc), replay("llamacpp", lc .. "data: [DONE]\n\nerror: x\n\n"))
  end)

  it("reports a line that is not JSON, with its number and words", function()
    local body = ollama_line('"a"') .. ollama_line('"b"') .. "Internal Server Error\n" .. OLLAMA_DONE
    local got = replay("ollama", body)
    assert.are.equal("ab", got.text)
    assert.are.equal("error", got.status)
    assert.are.equal(1, #got.others)
    local msg = got.others[1].message
    assert.are.equal("line 3 is not JSON: Internal Server Error (unexpected 'I': expected a "
      .. "value at column 1)", msg)
    assert.is_nil(got.others[1].server)
    local sse = replay("openai", ': hi\n\ndata: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
      .. 'data: {"choices": oops}\n\n')
    assert.are.equal("line 5 is not JSON: {\"choices\": oops} (unexpected 'o': expected a value "
      .. "at column 19)", sse.others[1].message)
  end)

  it("reports a line that is JSON but not an object, and a line that is not SSE", function()
    local got = replay("llamacpp", 'data: {"content":"a","stop":false}\n\ndata: [1,2]\n\n')
    assert.are.equal("line 3 is not a JSON object: [1,2]", got.others[1].message)
    got = replay("openai", "<html><body>502 Bad Gateway</body></html>\n")
    assert.matches("^line 1 is not an SSE line: <html><body>502 Bad Gateway</body></html> %(",
      got.others[1].message)
    got = replay("ollama", '"just a string"\n')
    assert.are.equal('line 1 is not a JSON object: "just a string"', got.others[1].message)
  end)

  it("caps a line at max_line bytes (before the LF, a CR included) at every split", function()
    local line = ollama_line('"' .. ("x"):rep(40) .. '"')
    local n = #line - 1
    local short_done = '{"done":true}\n'
    local ok = replay("ollama", line .. short_done, { max_line = n })
    assert.are.equal("done", ok.status)
    local over = replay("ollama", line:gsub("\n$", "\r\n") .. short_done, { max_line = n })
    assert.are.equal("error", over.status)
    assert.are.equal(("line 1 is longer than max_line (%d bytes)"):format(n), over.others[1].message)
    local late = replay("ollama", ollama_line('"a"') .. ollama_line('"' .. ("y"):rep(300) .. '"'),
      { max_line = 200 })
    assert.are.equal("a", late.text)
    assert.are.equal("line 2 is longer than max_line (200 bytes)", late.others[1].message)
    -- a cut line past the cap fails at once, without waiting for its LF
    local events, status = framing.decode("ollama", ("z"):rep(500), { max_line = 100, piece = 7 })
    assert.are.equal("error", status)
    assert.are.equal("line 1 is longer than max_line (100 bytes)", events[#events].message)
  end)

  it("takes strings longer than the tokenizer's default token cap when the line fits", function()
    local big = ("é"):rep(50000)  -- 100 kB of text in one piece
    local events, status = framing.decode("ollama", ollama_line('"' .. big .. '"') .. OLLAMA_DONE)
    assert.are.equal("done", status)
    assert.are.equal(big, events[1].text)
  end)

  it("decodes JSON escapes through the tokenizer", function()
    local got = replay("ollama", ollama_line('"\\u00e9\\n\\"q\\"\\t\\\\ \\ud83d\\ude42 \\u003c/a\\u003e"')
      .. OLLAMA_DONE)
    assert.are.equal('é\n"q"\t\\ 🙂 </a>', got.text)
  end)

  it("passes the server's error words on, and cuts long ones at a character", function()
    local got = replay("ollama", ollama_line('"a"') .. '{"error":"model \\"x\\" not found"}\n')
    assert.are.equal('model "x" not found', got.others[1].message)
    assert.is_true(got.others[1].server)
    local long = ("é"):rep(800)
    got = replay("openai", 'data: {"error":{"message":"' .. long .. '","type":"x"}}\n\n')
    local msg = got.others[1].message
    assert.is_true(#msg <= 1024 and #msg >= 1000)
    assert.is_not_nil(utf8.len(msg))
    got = replay("openai", 'data: {"error":{"type":"overloaded"}}\n\n')
    assert.are.equal("the server reported an error without a message", got.others[1].message)
    got = replay("llamacpp", "error: upstream went away\n\n")
    assert.are.equal("upstream went away", got.others[1].message)
    -- words end at a NUL byte, and none left means no words (found by tests/fuzz)
    got = replay("llamacpp", "error: \0\0\0\n\n")
    assert.are.equal("the server reported an error without a message", got.others[1].message)
    got = replay("ollama", '{"error":"\\u0000the model crashed"}\n')
    assert.are.equal("the server reported an error without a message", got.others[1].message)
    got = replay("llamacpp", "error: gone\0 tail\n\n")
    assert.are.equal("gone", got.others[1].message)
  end)

  it("reads SSE fields by the spec: comments, event/id/retry, data without a space", function()
    local body = "retry: 1000\n: comment\nevent: message\nid: 7\nfoo: bar\ndata\n"
      .. 'data:{"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
      .. 'data: {"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}]}\r\n\r\n'
      .. "data: [DONE]  \n\n"
    local got = replay("openai", body)
    assert.are.equal("ab", got.text)
    assert.are.equal("done", got.status)
  end)

  it("reads only the first choice, and only when its index is 0", function()
    local body = 'data: {"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":'
      .. '{"content":"X"}}]}\n\ndata: {"choices":[{"index":1,"delta":{"content":"Y"}}]}\n\n'
      .. 'data: {"choices":[{"delta":{"content":"b"},"index":0,"finish_reason":"stop"}]}\n\n'
      .. "data: [DONE]\n\n"
    assert.are.equal("ab", replay("openai", body).text)
  end)

  it("gives llama.cpp's older stopped_* flags the same done_reason words", function()
    local got = replay("llamacpp", 'data: {"content":"a","stop":false}\n\ndata: {"content":"",'
      .. '"stop":true,"stopped_eos":false,"stopped_limit":true,"tokens_predicted":1}\n\n')
    check_done({ completion_tokens = 1, done_reason = "length" }, got.others[1])
  end)

  it("takes OpenAI usage from a later chunk, and ends at finish_reason when [DONE] is missing", function()
    local body = 'data: {"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}],'
      .. '"usage":null}\n\ndata: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,'
      .. '"total_tokens":11}}\n\n'
    local got = replay("openai", body)
    assert.are.equal("done", got.status)
    check_done({ prompt_tokens = 9, completion_tokens = 2, done_reason = "stop" }, got.others[1])
    got = replay("openai", 'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n')
    assert.are.equal(ENDED, got.others[1].message)
  end)

  it("ends an empty body with the stream-ended error", function()
    local events, status = framing.decode("ollama", "")
    assert.are.equal("error", status)
    assert.are.equal(ENDED, events[1].message)
    events, status = framing.decode("llamacpp", "\n\n: only a comment\n\n")
    assert.are.equal(ENDED, events[1].message)
  end)

  it("stops when the text callback asks to", function()
    local body = read_file(STREAMS .. "ollama_chat_plan.ndjson")
    for n = 1, MAX_PIECE do
      local events, status = framing.decode("ollama", body, { piece = n, stop_after = 3 })
      assert.are.equal("stopped", status)
      assert.are.equal(3, #events)
      for _, ev in ipairs(events) do assert.are.equal("text", ev.kind) end
    end
  end)

  it("rejects unknown APIs and option keys", function()
    assert.has_error(function() framing.decode("anthropic", "") end)
    assert.has_error(function() framing.decode("ollama", "", { piece = 0 }) end)
    assert.has_error(function() framing.decode("ollama", "", { chunk = 4 }) end,
      "decode: unknown option 'chunk'")
  end)
end)
