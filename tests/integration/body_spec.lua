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
