-- The embedding example (examples/embed/game_loop.c) run as a game would run it: a frame loop
-- of 100 agents against `planhost sim --profile instant` (a SIMULATED server), and against
-- no server at all. Checks that every request ends in exactly one plan event; frame timing
-- is only sanity-checked here (budgets are for `make bench`, never for tests).
local H = require "helpers"

-- The game_loop beside the planhost command under test (build/, build/asan/, ...), so the
-- sanitizer run exercises the sanitizer build.
local game_loop = (H.bin:match("^(.*)/[^/]*$") or ".") .. "/game_loop"

local function run_game(args)
  local out, err = os.tmpname(), os.tmpname()
  local status = H.sh(("%s --root %s %s >%s 2>%s"):format(H.q(game_loop), H.q(H.root), args, out, err))
  local o, e = H.read(out), H.read(err)
  os.remove(out)
  os.remove(err)
  return status, o, e
end

local function run_json(args)
  local status, out, err = run_game(args .. " --json")
  local ok, report = pcall(H.cjson.decode, out)
  assert(ok, "game_loop printed no JSON (status " .. status .. "): " .. out .. err)
  return status, report, err
end

local SECONDS, FPS = 3, 60

-- Frames while asking: close to seconds * fps, with a wide margin for slow or busy machines.
local function assert_frames(report)
  assert.is_true(report.frames >= SECONDS * FPS * 0.4, "frames: " .. report.frames)
  assert.is_true(report.frames <= SECONDS * FPS + 2, "frames: " .. report.frames)
end

describe("examples/embed/game_loop", function()
  it("plans for 100 agents at 60 fps against the simulator, one plan per request", function()
    local sim = H.start_sim("--profile instant")
    local status, r, err = run_json(("--url %s --simulated --agents 100 --seconds %d --fps %d")
      :format(sim.url, SECONDS, FPS))
    sim.stop()
    assert.equal(0, status, err)
    assert.is_true(r.ok)
    assert.is_true(r.simulated)
    assert.is_true(r.submitted > 50, "submitted: " .. r.submitted)
    assert.equal(r.submitted, r.plans)
    assert.equal(0, r.unexpected)
    assert.equal(0, r.submit_errors)
    assert_frames(r)
    assert.is_true(r.source.llm > 0)
    assert.equal(r.plans, r.source.llm + r.source.cache + r.source.heuristic + r.source.emergency)
    assert.equal(r.plans, r.cache.hit + r.cache.miss + r.cache.stale + r.cache.coalesced + r.cache.off)
    assert.is_true(r.steps >= r.plans)
    assert.is_true(r.host_us.median <= r.host_us.p99 and r.host_us.p99 <= r.host_us.max)
    assert.is_true(r.latency_ms.p50 <= r.latency_ms.max)
  end)

  it("plans from the heuristic tier for every request when the server is unreachable", function()
    local status, r, err = run_json(("--url http://127.0.0.1:9 --agents 100 --seconds %d --fps %d"):format(SECONDS, FPS))
    assert.equal(0, status, err)
    assert.is_true(r.ok)
    assert.is_false(r.simulated)
    assert.is_true(r.submitted > 50, "submitted: " .. r.submitted)
    assert.equal(r.submitted, r.plans)
    assert.equal(r.plans, r.source.heuristic)
    assert.equal(0, r.source.llm)
    assert_frames(r)
  end)

  it("says SIMULATED in its text report, and rejects unknown options", function()
    local sim = H.start_sim("--profile instant")
    local status, out, err = run_game("--url " .. sim.url .. " --simulated --agents 10 --seconds 1")
    sim.stop()
    assert.equal(0, status, err)
    assert.truthy(out:find("SIMULATED", 1, true), out)
    local n, m = out:match("submitted (%d+) = plans (%d+)")
    assert.equal(n, m)
    assert.equal(2, (run_game("--frobnicate")))
    assert.equal(2, (run_game("--agents 0")))
  end)
end)
