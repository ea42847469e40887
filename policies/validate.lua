-- Plan validation rules the host applies to every step, whichever tier wrote it.
--
-- The host checks every step against the registry and the snapshot (tool offered by the
-- tier, parameters and types, enum values, targets that exist and are alive, Patrol with at
-- least two waypoints, no move onto an obstacle) and against the limits below. A step that
-- fails is dropped with its reason; a plan left with no step moves to the next tier
-- (reason "invalid"). validate(step, snapshot) adds the game's own rules: return true to
-- keep the step, or false and a reason to drop it. It runs once per step, so keep it cheap;
-- `snapshot` is read-only (one decoded copy is shared by a request's checks).

return {
  bounds = { min_x = -1000, min_y = -1000, max_x = 1000, max_y = 1000 },
  max_duration = 30,  -- seconds, for Wait, CoverFire, RequestCover
  max_radius = 50,    -- cells, for Scan and AoEAttack
  max_distance = 100, -- cells, for Approach and Retreat
  max_steps = 8,

  -- Game rule: a tool whose cooldown (me.cooldowns, keys like "throw:smoke") is still
  -- running cannot be used now.
  validate = function(step, snapshot)
    local cooldowns = snapshot.me and snapshot.me.cooldowns
    if type(cooldowns) ~= "table" then return true end
    local key = step.act:gsub("(%l)(%u)", "%1:%2"):lower()   -- ThrowSmoke -> throw:smoke
    local left = cooldowns[key]
    if type(left) == "number" and left > 0 then
      return false, ("%s is on cooldown for %.1f s"):format(step.act, left)
    end
    return true
  end,
}
