-- Plan cache policy: which snapshot fields count when the host looks for a plan it has
-- already made, which plans it keeps, and whether identical requests share one answer.
--
-- The cache key is the snapshot hash below folded with the tier's template, its tool subset,
-- the model and its options, and the content hash of the whole script tree: editing any
-- prompt or policy file never serves plans made under the old text. A hit is delivered only
-- after the cached plan validates against the *current* snapshot (a dead target, a cooldown
-- still running, a move onto a new obstacle make it a miss, counted as stale).
--
-- `planhost hash SNAPSHOT.json` prints the hash and the canonical form it was computed from,
-- so you can see exactly what counts.
return {
  enabled = true,

  -- Which plans are kept, by source. Heuristic plans are cheap to make again; keep them
  -- only if your heuristic is slow.
  store = { llm = true, heuristic = false },

  -- A request whose key is already being asked for waits for that answer instead of sending
  -- its own (each agent still gets its own plan event, "cache":"coalesced").
  coalesce = true,

  hash_rules = {
    -- Left out of the hash entirely. The agent id is ignored so that agents in the same
    -- situation share plans; put it back if your plans are agent-specific.
    ignore = { "t", "agent", "**.last_seen" },

    -- Numbers at a path (and every number inside it) count as floor(v / step): the plan
    -- made for hp 63 serves hp 60..79 with a step of 20. Fields no rule mentions count
    -- exactly, so nothing unexpected is lost.
    quantise = {
      ["me.pos"] = 2, ["player.pos"] = 4, ["enemies[].pos"] = 2, ["pois[].pos"] = 2,
      ["me.hp"] = 20, ["player.hp"] = 25, ["enemies[].hp"] = 25,
      ["me.ammo"] = 10, ["me.morale"] = 0.25, ["me.cooldowns"] = 5,
    },

    -- Arrays whose order does not matter.
    sets = { "enemies", "pois", "obstacles" },

    -- Positions relative to the agent (anchor me.pos) make plans reusable across the map,
    -- but plans hold absolute coordinates (MoveTo x, y), so a plan made elsewhere would walk
    -- to the wrong place. Keep this empty unless your plans use relative moves.
    relative = {},
    anchor = "me.pos",
  },
}
