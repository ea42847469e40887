-- Request bodies with a JSON schema built from the template's tool subset, in each API's
-- own field; templates without schema send none.
local H = require "helpers"

local function body(api, template)
  local status, out, err = H.run(("prompt --body --api %s --template %s %s"):format(api, template,
    H.q(H.root .. "/examples/snapshots/hello_companion.json")))
  assert.equal(0, status, err)
  return H.cjson.decode(out)
end

describe("request body schema", function()
  local host, tools, subsets, by_name
  setup(function()
    host = H.open()
    tools, subsets = host:tools()
    by_name = {}
    for _, t in ipairs(tools) do by_name[t.name] = t end
  end)
  teardown(function() host:close() end)

  it("offers exactly the template's tools, with their required parameters", function()
    local schema = body("ollama", "compact").format
    assert.equal("object", schema.type)
    local alts = schema.properties.steps.items.anyOf
    assert.equal(#subsets.compact, #alts)
    for _, alt in ipairs(alts) do
      local name = alt.properties.act.enum[1]
      local tool = assert(by_name[name], name)
      local required = {}
      for _, r in ipairs(alt.required) do required[r] = true end
      assert.is_true(required.act)
      for _, p in ipairs(tool.params) do
        assert.is_table(alt.properties[p.name], name .. "." .. p.name)
        assert.equal(not p.optional, required[p.name] == true, name .. "." .. p.name)
      end
      assert.is_false(alt.additionalProperties)
    end
  end)

  it("goes in each API's own field", function()
    assert.is_table(body("openai", "compact").response_format.json_schema.schema)
    assert.is_table(body("llamacpp", "compact").json_schema)
    assert.is_table(body("ollama-generate", "compact").format)
  end)

  it("is left out when the template does not ask for it", function()
    local b = body("ollama", "full")
    assert.is_nil(b.format)
  end)
end)

describe("request body options", function()
  after_each(function() H.cleanup() end)

  it("take a tier's options over its template's, and leave the rest as the template says", function()
    local sim = H.start_sim("--profile instant")
    local dir = H.scratch_tree()
    H.write(dir .. "/policies/tiers.lua", [[return {
      tiers = { hot = { kind = "llm", template = "compact", options = { temperature = 0.9, seed = 7 } },
                plain = { kind = "llm", template = "compact" } },
      chain = function(ctx) return { ctx.game.tier, "heuristic", "emergency" } end }]])
    local host = H.open(dir, { url = sim.url, cache = false })
    local sent = {}
    for _, tier in ipairs({ "hot", "plain" }) do
      H.plan(host, { snapshot = H.snapshot("hello_companion"), game = ('{"tier":"%s"}'):format(tier) })
      sent[tier] = H.cjson.decode(sim.last_body()).options
    end
    assert.same({ 0.9, 7 }, { sent.hot.temperature, sent.hot.seed })
    assert.is_nil(sent.plain.seed)
    assert.not_equal(0.9, sent.plain.temperature)
    assert.equal(sent.plain.num_predict, sent.hot.num_predict)    -- the template's, in both
    host:close()
    sim.stop()
  end)

  it("refuse a bad tier option with the tier's name", function()
    local dir = H.scratch_tree()
    H.write(dir .. "/policies/tiers.lua", [[return {
      tiers = { hot = { kind = "llm", template = "compact", options = { temperature = 7 } } },
      chain = function() return { "hot" } end }]])
    local host, msg = H.planhost.open({ root = dir })
    assert.is_nil(host)
    assert.matches("policies/tiers.lua: tier hot: options", msg, 1, true)
  end)
end)
