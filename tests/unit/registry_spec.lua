-- The tool registry as the host compiled it from lua/tools.lua (TOOLS.md is the source).
local H = require "helpers"

local expected = {
  movement = { "MoveTo", "Approach", "Retreat", "TakeCover", "Strafe", "Patrol" },
  offensive = { "Attack", "AimedShot", "QuickAttack", "HeavyAttack", "AoEAttack", "ThrowExplosive", "CoverFire", "Charge" },
  defensive = { "Block", "Dodge", "Parry", "ThrowSmoke", "Heal", "UseDefensiveAbility" },
  equipment = { "EquipWeapon", "SwitchWeapon", "Reload", "UseItem", "DropItem" },
  tactical = { "CallReinforcements", "MarkTarget", "RequestCover", "CoordinateAttack", "SetAmbush", "Distract", "Regroup" },
  utility = { "Scan", "Wait", "Interact", "UseAbility", "Taunt" },
}

-- act -> "param:type[?]" list, straight from TOOLS.md
local signatures = {
  MoveTo = "x:int y:int speed:enum?", Approach = "target_id:entity distance:float",
  Retreat = "target_id:entity distance:float", TakeCover = "position:position?",
  Strafe = "target_id:entity direction:enum", Patrol = "waypoints:positions",
  Attack = "target_id:entity", AimedShot = "target_id:entity", QuickAttack = "target_id:entity",
  HeavyAttack = "target_id:entity", AoEAttack = "x:int y:int radius:float", ThrowExplosive = "x:int y:int",
  CoverFire = "target_id:entity duration:float", Charge = "target_id:entity", Block = "", Dodge = "direction:enum?",
  Parry = "", ThrowSmoke = "x:int y:int", Heal = "target_id:entity?", UseDefensiveAbility = "ability_name:string",
  EquipWeapon = "weapon_name:string", SwitchWeapon = "slot:uint", Reload = "", UseItem = "item_name:string",
  DropItem = "item_name:string", CallReinforcements = "count:uint", MarkTarget = "target_id:entity",
  RequestCover = "duration:float", CoordinateAttack = "target_id:entity", SetAmbush = "position:position",
  Distract = "target_id:entity", Regroup = "rally_point:position", Scan = "radius:float", Wait = "duration:float",
  Interact = "target_id:entity", UseAbility = "ability_name:string", Taunt = "target_id:entity",
}

local cooldowns = { Attack = 1, AimedShot = 2, QuickAttack = 0.5, HeavyAttack = 3, AoEAttack = 5, ThrowExplosive = 8,
  CoverFire = 4, Charge = 6, Block = 1, Dodge = 2, Parry = 3, ThrowSmoke = 8, Heal = 10, UseDefensiveAbility = 15,
  EquipWeapon = 1, SwitchWeapon = 0.5, Reload = 2, UseItem = 1, CallReinforcements = 60, MarkTarget = 5,
  RequestCover = 10, CoordinateAttack = 15, SetAmbush = 20, Distract = 8, Regroup = 10, Scan = 5, Interact = 1,
  UseAbility = 10, Taunt = 6 }

describe("tool registry", function()
  local host, tools, subsets, by_name
  setup(function()
    host = H.open()
    tools, subsets = host:tools()
    by_name = {}
    for _, t in ipairs(tools) do by_name[t.name] = t end
  end)
  teardown(function() host:close() end)

  it("has the 37 tools of TOOLS.md in their groups", function()
    assert.equal(37, #tools)
    for group, names in pairs(expected) do
      for _, n in ipairs(names) do
        assert.is_table(by_name[n], "missing tool " .. n)
        assert.equal(group, by_name[n].group, n)
      end
    end
  end)

  it("gives every tool the parameters and types of TOOLS.md", function()
    for name, sig in pairs(signatures) do
      local parts = {}
      for _, p in ipairs(by_name[name].params) do
        parts[#parts + 1] = p.name .. ":" .. p.type .. (p.optional and "?" or "")
      end
      assert.equal(sig, table.concat(parts, " "), name)
      assert.is_string(by_name[name].desc)
      assert.is_true(#by_name[name].desc > 0, name .. " has no description")
    end
  end)

  it("has TOOLS.md's cooldowns", function()
    for _, t in ipairs(tools) do
      assert.equal(cooldowns[t.name] or 0, t.cooldown, t.name)
    end
  end)

  it("lists enum values in lowercase", function()
    assert.same({ "walk", "run", "sprint" }, by_name.MoveTo.params[3].values)
    assert.same({ "left", "right" }, by_name.Strafe.params[2].values)
    for _, t in ipairs(tools) do
      for _, p in ipairs(t.params) do
        for _, v in ipairs(p.values or {}) do assert.equal(v:lower(), v) end
      end
    end
  end)

  it("knows which entities a target may be", function()
    assert.same({ "enemy" }, by_name.Attack.params[1].of)
    local heal = {}
    for _, k in ipairs(by_name.Heal.params[1].of) do heal[k] = true end
    assert.is_true(heal.self and heal.player and heal.ally)
    assert.equal(2, by_name.Patrol.params[1].min_items)
  end)

  it("has the simplified (15) and compact (8) subsets of DESIGN.md", function()
    local function sorted(t) local c = { table.unpack(t) } table.sort(c) return c end
    assert.same(sorted { "MoveTo", "ThrowSmoke", "ThrowExplosive", "AoEAttack", "TakeCover", "Attack", "Approach",
      "Retreat", "MarkTarget", "Distract", "Reload", "Scan", "Wait", "Block", "Heal" }, sorted(subsets.simplified))
    assert.same(sorted { "MoveTo", "Attack", "TakeCover", "Reload", "Scan", "Wait", "ThrowSmoke", "Retreat" },
      sorted(subsets.compact))
  end)

  it("rejects a registry entry of unknown type with its name", function()
    local dir = H.scratch_tree()
    H.edit(dir .. "/lua/tools.lua", 'type = "float"', 'type = "flaot"')
    local h, msg = H.planhost.open(dir)
    assert.is_nil(h)
    assert.matches("lua/tools.lua", msg, 1, true)
    assert.matches("flaot", msg, 1, true)
    H.cleanup()
  end)
end)
