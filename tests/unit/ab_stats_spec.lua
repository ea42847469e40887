-- ab_stats: the A/B statistics of tools/ab/stats.lua (pure Lua, no host module).
--
-- Every expected value is cited next to it: R 4.2.2 (stats, Epi 2.47) as run on Debian
-- bookworm, a published table, or a closed form. Each is also checked a second way in this
-- file by an independent method: Fisher's p-value by exact integer enumeration of all
-- tables, Wilson limits by solving the score equation, the z test by the 4-cell chi-square,
-- Phi by Simpson integration of the density, needed_n by evaluating power at n and n - 1.
package.path = "tools/ab/?.lua;" .. package.path
local stats = require "stats"

local function near(expected, actual, tol)
  tol = tol or 1e-9
  local scale = math.max(1, math.abs(expected))
  assert(math.abs(expected - actual) <= tol * scale,
    string.format("expected %.15g, got %.15g (tol %g)", expected, actual, tol))
end

-- n exponential variates of the given scale (median scale * ln 2), from the module's rng.
local function expo(n, scale, seed)
  local g, xs = stats.rng(seed), {}
  for i = 1, n do xs[i] = -scale * math.log(1 - g:uniform()) end
  return xs
end

describe("ab stats", function()
  describe("rng (xorshift64*)", function()
    it("seeds through splitmix64", function()
      -- splitmix64 from state 0: first output 0xe220a8397b1dcdaf, the commonly cited value;
      -- recomputed here in Python with 64-bit masks.
      assert.equal(0xe220a8397b1dcdaf, stats.rng(0).state)
    end)

    it("matches an independent xorshift64* implementation", function()
      -- Python, masking to 64 bits: x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
      -- out = x * 0x2545F4914F6CDD1D, from splitmix64(42).
      local g = stats.rng(42)
      assert.equal("31b0ece7c4f697a2", string.format("%016x", g:next()))
      assert.equal("9008a3b1cb686f03", string.format("%016x", g:next()))
      assert.equal("7c7173abd97be16f", string.format("%016x", g:next()))
      near(0.1941059175341826, stats.rng(42):uniform(), 1e-15) -- (out >> 11) / 2^53
    end)

    it("gives uniforms in [0, 1) and integers in 1..n", function()
      local g, sum, seen = stats.rng(5), 0, {}
      for _ = 1, 20000 do
        local u = g:uniform()
        assert.is_true(u >= 0 and u < 1)
        sum = sum + u
        local k = g:int(6)
        assert.is_true(k >= 1 and k <= 6 and math.type(k) == "integer")
        seen[k] = (seen[k] or 0) + 1
      end
      near(0.5, sum / 20000, 0.01) -- sd of the mean: 1 / sqrt(12 * 20000) = 0.002
      for k = 1, 6 do near(20000 / 6, seen[k], 0.05) end
      assert.has_error(function() stats.rng(1.5) end)
    end)
  end)

  describe("summary and quantile", function()
    it("uses R's type 7", function()
      -- R: quantile(c(1, 3, 4, 7, 12, 20), c(0, .1, .25, .5, .9, .95, 1), type = 7)
      --    -> 1.00 2.00 3.25 5.50 16.00 18.00 20.00 (by hand: h = 5p + 1, e.g. 0.9 -> 5.5
      --    -> 12 + 0.5 * 8 = 16)
      local xs = { 20, 4, 1, 12, 7, 3 }
      local want = { [0] = 1, [0.1] = 2, [0.25] = 3.25, [0.5] = 5.5, [0.9] = 16, [0.95] = 18,
                     [1] = 20 }
      for p, q in pairs(want) do near(q, stats.quantile(xs, p), 1e-12) end
      assert.equal(7, stats.quantile({ 7 }, 0.3))
      assert.is_nil(stats.quantile({}, 0.5))
      assert.same({ 20, 4, 1, 12, 7, 3 }, xs) -- input untouched
      assert.has_error(function() stats.quantile(xs, 1.5) end)
      assert.has_error(function() stats.quantile({ 1, "2" }, 0.5) end)
    end)

    it("summarises a sample", function()
      -- R: y <- c(12.5, 3, 7.25, 9, 1, 4); mean(y) 6.125, sd(y) 4.2595480981,
      --    median(y) 5.625, quantile(y, .95) 11.625 (by hand: sum of squares 90.71875 / 5)
      local s = stats.summary({ 12.5, 3, 7.25, 9, 1, 4 })
      assert.equal(6, s.n)
      near(6.125, s.mean, 1e-12)
      near(4.2595480981, s.sd, 1e-10)
      near(math.sqrt(90.71875 / 5), s.sd, 1e-12)
      near(5.625, s.median, 1e-12)
      near(11.625, s.p95, 1e-12)
      assert.equal(1, s.min)
      assert.equal(12.5, s.max)
      assert.same({ n = 0 }, stats.summary({}))
      assert.is_nil(stats.summary({ 3 }).sd)
    end)
  end)

  describe("normal distribution", function()
    -- Simpson's rule on the density over [0, |x|], 2000 panels: an independent Phi.
    local function phi_simpson(x)
      local n, h, sum = 2000, math.abs(x) / 2000, 0
      local f = function(t) return math.exp(-t * t / 2) / math.sqrt(2 * math.pi) end
      for i = 0, n do
        local w = (i == 0 or i == n) and 1 or (i % 2 == 1 and 4 or 2)
        sum = sum + w * f(i * h)
      end
      local half = sum * h / 3
      return x >= 0 and 0.5 + half or 0.5 - half
    end

    it("has the known values of Phi", function()
      near(0.9750021048517795, stats.normal_cdf(1.96), 1e-14) -- R: pnorm(1.96)
      near(0.8413447460685429, stats.normal_cdf(1), 1e-14)    -- R: pnorm(1)
      near(0.5, stats.normal_cdf(0), 0)
      -- tails, relative: R: pnorm(-5) 2.8665157187919391e-07, pnorm(-10) 7.6198530241605269e-24
      near(1, stats.normal_cdf(-5) / 2.8665157187919391e-07, 1e-13)
      near(1, stats.normal_cdf(-10) / 7.6198530241605269e-24, 1e-13)
      near(1, stats.normal_cdf(-30) / 4.9067139271481872e-198, 1e-12)
      near(0.157299207050285, stats.erfc(1), 1e-14)           -- R: 2 * pnorm(-sqrt(2))
      for _, x in ipairs({ -3, -1.96, -0.4, 0.3, 0.47, 1.2, 2.5, 3.9, 4.2 }) do
        near(phi_simpson(x), stats.normal_cdf(x), 1e-12)
      end
    end)

    it("has the known values of Phi^-1", function()
      near(1.959963984540054, stats.normal_quantile(0.975), 1e-14) -- R: qnorm(0.975)
      near(0.8416212335729144, stats.normal_quantile(0.8), 1e-14)  -- R: qnorm(0.8)
      near(-3.090232306167813, stats.normal_quantile(0.001), 1e-14) -- R: qnorm(0.001)
      near(-6.361340902404056, stats.normal_quantile(1e-10), 1e-14) -- R: qnorm(1e-10)
      near(-37.0470962993612, stats.normal_quantile(1e-300), 1e-13) -- R: qnorm(1e-300)
      assert.equal(0, stats.normal_quantile(0.5))
      assert.equal(-math.huge, stats.normal_quantile(0))
      assert.equal(math.huge, stats.normal_quantile(1))
      for _, p in ipairs({ 1e-8, 0.01, 0.02425, 0.2, 0.6, 0.97575, 0.999 }) do
        near(p, stats.normal_cdf(stats.normal_quantile(p)), 1e-14) -- round trip
      end
      assert.has_error(function() stats.normal_quantile(-0.1) end)
    end)
  end)

  describe("wilson", function()
    -- Second method: a Wilson limit L solves (phat - L)^2 = z^2 L (1 - L) / n.
    local function score_z(k, n, limit)
      return math.abs(k / n - limit) / math.sqrt(limit * (1 - limit) / n)
    end

    it("has the known intervals", function()
      -- R: prop.test(k, n, correct = FALSE)$conf.int (the Wilson score interval)
      local cases = {
        { 8, 10, 0.95, 0.4901624715, 0.9433178485 },
        { 0, 10, 0.95, 0, 0.2775327999 },
        { 10, 10, 0.95, 0.7224672001, 1 },
        { 3, 20, 0.90, 0.0615824105, 0.3218280757 },
        { 41, 50, 0.95, 0.6920394633, 0.9022980733 },
      }
      for _, c in ipairs(cases) do
        local w = stats.wilson(c[1], c[2], c[3])
        near(c[4], w.lo, 1e-9)
        near(c[5], w.hi, 1e-9)
        local z = stats.normal_quantile(1 - (1 - c[3]) / 2)
        if c[1] > 0 then near(z, score_z(c[1], c[2], w.lo), 1e-9) end
        if c[1] < c[2] then near(z, score_z(c[1], c[2], w.hi), 1e-9) end
      end
      assert.equal(0, stats.wilson(0, 10).lo)
      assert.equal(1, stats.wilson(10, 10).hi)
    end)

    it("gives {0, 1} and a flag for no trials", function()
      local w = stats.wilson(0, 0)
      assert.equal(0, w.lo)
      assert.equal(1, w.hi)
      assert.is_true(w.no_data)
      assert.is_false(stats.wilson(1, 2).no_data)
      assert.has_error(function() stats.wilson(3, 2) end)
      assert.has_error(function() stats.wilson(1.5, 2) end)
    end)
  end)

  describe("two_proportion_test", function()
    -- Second method: Pearson's chi-square over the four cells equals z^2.
    local function chisq(k1, n1, k2, n2)
      local m, N, x2 = k1 + k2, n1 + n2, 0
      for _, c in ipairs({ { k1, n1 * m / N }, { n1 - k1, n1 * (N - m) / N },
                           { k2, n2 * m / N }, { n2 - k2, n2 * (N - m) / N } }) do
        x2 = x2 + (c[1] - c[2]) ^ 2 / c[2]
      end
      return x2
    end

    it("has the known values", function()
      -- R: prop.test(c(k1, k2), c(n1, n2), correct = FALSE): X-squared and p-value
      local cases = {
        { 41, 50, 30, 50, 5.87663914522, 0.0153430815849 },
        { 180, 300, 150, 300, 6.06060606061, 0.0138230238204 },
        { 45, 100, 55, 100, 2, 0.15729920705 },
        { 60, 100, 54, 100, 0.734394124847, 0.391462579008 },
      }
      for _, c in ipairs(cases) do
        local p, z = stats.two_proportion_test(c[1], c[2], c[3], c[4])
        near(c[6], p, 1e-10)
        near(c[5], z * z, 1e-10)
        near(chisq(c[1], c[2], c[3], c[4]), z * z, 1e-12)
      end
      local _, z = stats.two_proportion_test(45, 100, 55, 100)
      near(-math.sqrt(2), z, 1e-12) -- by hand: pooled 0.5, se sqrt(0.25 * 0.02) = 0.0707
      assert.same({ 1, 0 }, { stats.two_proportion_test(0, 10, 0, 20) })
    end)
  end)

  describe("fisher_exact", function()
    -- Second method: exact integer arithmetic. With margins fixed, table x has weight
    -- C(n1, x) C(n2, m - x); the p-value is the sum of weights <= the observed one over
    -- C(n1 + n2, m), all integers (exact for these sizes).
    local function choose(n, k)
      local c = 1
      for i = 1, k do c = c * (n - k + i) // i end
      return c
    end
    local function fisher_by_enumeration(k1, n1, k2, n2)
      local m = k1 + k2
      local obs, tail = choose(n1, k1) * choose(n2, k2), 0
      for x = math.max(0, m - n2), math.min(n1, m) do
        local w = choose(n1, x) * choose(n2, m - x)
        if w <= obs then tail = tail + w end
      end
      return tail / choose(n1 + n2, m)
    end

    it("has the known p-values", function()
      -- R: fisher.test(matrix(c(k1, k2, n1 - k1, n2 - k2), 2))$p.value
      local cases = {
        { 3, 4, 1, 4, 0.485714285714 },     -- lady tasting tea: 34/70 (Fisher 1935)
        { 10, 10, 0, 10, 1.08250882245e-05 }, -- 2 / choose(20, 10)
        { 7, 12, 2, 15, 0.0369183829138 },
        { 9, 10, 3, 10, 0.0197666110979 },
        { 1, 9, 11, 14, 0.00275945618522 },
        { 41, 50, 30, 50, 0.0266052015865 },
        { 180, 300, 150, 300, 0.01724816837 }, -- log-factorials past the table (Stirling)
        { 0, 10, 0, 10, 1 },
      }
      for _, c in ipairs(cases) do
        near(c[5], stats.fisher_exact(c[1], c[2], c[3], c[4]), 1e-10)
      end
      near(34 / 70, fisher_by_enumeration(3, 4, 1, 4), 1e-15)
      near(2 / 184756, stats.fisher_exact(10, 10, 0, 10), 1e-15)
    end)

    it("agrees with exact enumeration on every table up to 9 per arm", function()
      for n1 = 1, 9 do
        for n2 = 1, 9 do
          for k1 = 0, n1 do
            for k2 = 0, n2 do
              near(fisher_by_enumeration(k1, n1, k2, n2), stats.fisher_exact(k1, n1, k2, n2), 1e-12)
            end
          end
        end
      end
      near(fisher_by_enumeration(7, 25, 16, 27), stats.fisher_exact(7, 25, 16, 27), 1e-12)
    end)

    it("has log-factorials to double precision", function()
      near(15.1044125730755, stats.log_factorial(10), 1e-14)  -- R: lfactorial(10)
      near(1414.90584994507, stats.log_factorial(300), 1e-14)  -- R: lfactorial(300)
      near(5912.12817848816, stats.log_factorial(1000), 1e-14) -- R: lfactorial(1000)
      near(math.log(257), stats.log_factorial(257) - stats.log_factorial(256), 1e-11)
    end)
  end)

  describe("bootstrap_ci", function()
    local xs = expo(200, 100, 7) -- true median 100 ln 2 = 69.31

    it("is reproducible for a fixed seed", function()
      local a = stats.bootstrap_ci(xs, stats.median, { reps = 500, seed = 11 })
      local b = stats.bootstrap_ci(xs, stats.median, { reps = 500, seed = 11 })
      local c = stats.bootstrap_ci(xs, stats.median, { reps = 500, seed = 12 })
      assert.same(a, b)
      assert.is_true(a.lo ~= c.lo or a.hi ~= c.hi)
      assert.equal(500, a.reps)
    end)

    it("contains the true median of a synthetic sample", function()
      local b = stats.bootstrap_ci(xs, stats.median, { seed = 11 })
      assert.equal(2000, b.reps)
      assert.equal(0.95, b.level)
      near(stats.median(xs), b.estimate, 0)
      assert.is_true(b.lo < 100 * math.log(2) and 100 * math.log(2) < b.hi)
      assert.is_true(b.lo < b.estimate and b.estimate < b.hi)
    end)

    it("matches the normal interval for a mean", function()
      -- For the mean of 400 uniforms the percentile interval is close to
      -- mean +- 1.96 sd / sqrt(n) (Efron & Tibshirani 1993, ch. 13).
      local g, us = stats.rng(3), {}
      for i = 1, 400 do us[i] = g:uniform() end
      local mean = function(t) local s = 0; for i = 1, #t do s = s + t[i] end; return s / #t end
      local b = stats.bootstrap_ci(us, mean, { seed = 4 })
      local half = 1.959964 * stats.summary(us).sd / math.sqrt(400)
      near(2 * half, b.hi - b.lo, 0.1 * 2 * half)
    end)

    it("rejects bad options", function()
      assert.has_error(function() stats.bootstrap_ci(xs, stats.median, { repz = 10 }) end)
      assert.has_error(function() stats.bootstrap_ci(xs, stats.median, { level = 95 }) end)
      assert.has_error(function() stats.bootstrap_ci(xs, stats.median, { seed = "x" }) end)
      assert.same({ nil, "empty sample" }, { stats.bootstrap_ci({}, stats.median) })
    end)
  end)

  it("bootstrap_ci checks what stat_fn returns", function()
    assert.has_error(function() stats.bootstrap_ci({ 1, 2 }, function() return "x" end) end)
  end)

  describe("ratio_of_medians", function()
    it("resamples each arm and brackets the estimate", function()
      local a, b = expo(150, 100, 1), expo(150, 200, 2)
      local r = stats.ratio_of_medians(a, b, { reps = 1000, seed = 9 })
      near(stats.median(a) / stats.median(b), r.estimate, 1e-15)
      assert.is_true(r.lo < r.estimate and r.estimate < r.hi)
      assert.is_true(r.lo < 0.5 and 0.5 < r.hi) -- the true ratio
      assert.same(r, stats.ratio_of_medians(a, b, { reps = 1000, seed = 9 }))
      assert.has_error(function() stats.ratio_of_medians({ 1, 0 }, b) end) -- must be > 0
    end)
  end)

  describe("compare_validity", function()
    it("finds A more valid (z test) with Newcombe's interval", function()
      local c = stats.compare_validity(41, 50, 30, 50)
      assert.equal("z", c.test)
      near(0.0153430815849, c.p_value, 1e-10) -- R: prop.test(c(41,30), c(50,50), correct = FALSE)
      assert.equal("A is more valid than B (p = 0.015)", c.verdict)
      assert.is_true(c.significant)
      near(0.22, c.diff, 1e-12)
      -- R: Epi::ci.pd(41, 30, 9, 20) -> 0.04187336114 0.3808360629 (Newcombe method 10)
      near(0.04187336114, c.diff_lo, 1e-9)
      near(0.3808360629, c.diff_hi, 1e-9)
    end)

    it("has Newcombe's published intervals", function()
      -- Newcombe (1998) examples (a) 56/70 - 48/80 and (b) 9/10 - 3/10, method 10:
      -- 0.0524 to 0.3339 and 0.1705 to 0.8090; R: Epi::ci.pd(56, 48, 14, 32) ->
      -- 0.0524314724 0.333872654, Epi::ci.pd(9, 3, 1, 7) -> 0.1705227239 0.8090179735
      local a = stats.compare_validity(56, 70, 48, 80)
      near(0.0524314724, a.diff_lo, 1e-9)
      near(0.333872654, a.diff_hi, 1e-9)
      local b = stats.compare_validity(9, 10, 3, 10)
      near(0.1705227239, b.diff_lo, 1e-9)
      near(0.8090179735, b.diff_hi, 1e-9)
      assert.equal("fisher", b.test) -- 10 trials per arm, a cell of 1
      near(0.0197666110979, b.p_value, 1e-10)
      assert.equal("A is more valid than B (p = 0.02)", b.verdict)
    end)

    it("finds B more valid, or no difference, both ways", function()
      local b = stats.compare_validity(1, 9, 11, 14)
      assert.equal("fisher", b.test)
      assert.equal("B is more valid than A (p = 0.0028)", b.verdict) -- R: 0.00275945618522
      -- R: Epi::ci.pd(1, 11, 8, 3) -> -0.8405046092 -0.2582597702
      near(-0.8405046092, b.diff_lo, 1e-9)
      near(-0.2582597702, b.diff_hi, 1e-9)
      local tea = stats.compare_validity(3, 4, 1, 4)
      assert.equal("fisher", tea.test)
      assert.equal("no significant difference (p = 0.49)", tea.verdict) -- R: 0.4857
      assert.is_false(tea.significant)
      local z = stats.compare_validity(60, 100, 54, 100)
      assert.equal("z", z.test)
      assert.equal("no significant difference (p = 0.39)", z.verdict) -- R: 0.391462579008
      assert.is_true(z.diff_lo < 0 and 0 < z.diff_hi)
    end)

    it("chooses Fisher for small arms and small cells", function()
      -- 15/20 vs 6/20: every cell >= 5, but 20 trials per arm. R: fisher.test -> 0.0103867022
      -- (prop.test would say 0.0043772297)
      local small = stats.compare_validity(15, 20, 6, 20)
      assert.equal("fisher", small.test)
      near(0.0103867021989, small.p_value, 1e-10)
      -- 5/30 vs 5/1000: observed cells >= 5, expected 10 * 30 / 1030 = 0.29 < 5.
      -- R: fisher.test -> 3.38719133569e-06
      local rare = stats.compare_validity(5, 30, 5, 1000)
      assert.equal("fisher", rare.test)
      near(3.38719133569e-06, rare.p_value, 1e-9)
      assert.equal("A is more valid than B (p < 0.001)", rare.verdict)
    end)

    it("computes needed_n by the two-proportion formula", function()
      -- R: power.prop.test(p1 = , p2 = , power = 0.8)$n, rounded up
      local cases = { { 0.82, 0.60, 66 },  -- 65.58892079
                      { 0.60, 0.50, 388 }, -- 387.33851670
                      { 0.50, 0.60, 388 },
                      { 0.90, 0.75, 100 }, -- 99.54015920
                      { 0.60, 0.54, 1068 } } -- 1067.57609516
      -- Second method: R's power function, power(n) = Phi((sqrt(n) |d| - z_a sqrt(2 pq)) /
      -- sqrt(p1 q1 + p2 q2)), must reach 0.8 at n and not at n - 1.
      local function power(n, p1, p2)
        local pbar = (p1 + p2) / 2
        return stats.normal_cdf((math.sqrt(n) * math.abs(p1 - p2) - 1.959963984540054
          * math.sqrt(2 * pbar * (1 - pbar))) / math.sqrt(p1 * (1 - p1) + p2 * (1 - p2)))
      end
      for _, c in ipairs(cases) do
        local n = stats.needed_n_proportions(c[1], c[2], 0.05, 0.8)
        assert.equal(c[3], n)
        assert.is_true(power(n, c[1], c[2]) >= 0.8 and power(n - 1, c[1], c[2]) < 0.8)
      end
      assert.equal(66, stats.compare_validity(41, 50, 30, 50).needed_n)
      assert.equal(1068, stats.compare_validity(60, 100, 54, 100).needed_n)
      assert.equal(math.huge, stats.compare_validity(5, 10, 10, 20).needed_n)
    end)

    it("handles empty arms and bad input", function()
      assert.same({ nil, "an arm has no trials" }, { stats.compare_validity(0, 0, 3, 10) })
      assert.has_error(function() stats.compare_validity(11, 10, 3, 10) end)
      assert.has_error(function() stats.compare_validity(1, 10, 3, 10, { alpha = 0.1 }) end)
      local c = stats.compare_validity(41, 50, 30, 50, { level = 0.99 })
      assert.equal("no significant difference (p = 0.015)", c.verdict) -- alpha 0.01
    end)
  end)

  describe("compare_latency", function()
    local fast, slow = expo(200, 100, 21), expo(200, 200, 22) -- true ratio 0.5

    it("says A is faster, or slower, when the interval excludes 1", function()
      local c = stats.compare_latency(fast, slow, { seed = 3 })
      assert.is_true(c.significant and c.hi < 1)
      assert.equal(string.format("A is %.2f× faster", 1 / c.ratio), c.verdict)
      assert.is_true(c.lo < 0.5 and 0.5 < c.hi)
      local d = stats.compare_latency(slow, fast, { seed = 3 })
      assert.is_true(d.significant and d.lo > 1)
      assert.equal(string.format("A is %.2f× slower", d.ratio), d.verdict)
      near(1 / c.ratio, d.ratio, 1e-12)
    end)

    it("says no significant difference when the interval contains 1", function()
      local c = stats.compare_latency(expo(100, 100, 31), expo(100, 100, 32), { seed = 3 })
      assert.is_true(c.lo < 1 and 1 < c.hi)
      assert.is_false(c.significant)
      assert.equal("no significant difference", c.verdict)
      assert.is_true(c.needed_n > 100)
    end)

    it("estimates needed trials from the bootstrap spread", function()
      local c = stats.compare_latency(fast, slow, { seed = 3 })
      -- the formula: n = (z_.975 + z_.8)^2 (n_a sd_a^2 + n_b sd_b^2) / log(ratio)^2,
      -- z_.975 + z_.8 = 2.80158521811 (R: qnorm(.975) + qnorm(.8))
      local want = 2.80158521811 ^ 2 * (200 * c.sd_log_a ^ 2 + 200 * c.sd_log_b ^ 2)
        / math.log(c.ratio) ^ 2
      assert.equal(math.ceil(want), c.needed_n)
      -- Theory: the sample median of an exponential has var(log median) ~ 1 / (n ln(2)^2)
      -- (asymptotic variance 1 / (4 n f(m)^2), f(m) = 1 / (2 scale)), so n sd^2 ~ 2.08.
      near(1 / math.log(2) ^ 2, 100 * (c.sd_log_a ^ 2 + c.sd_log_b ^ 2), 0.3)
      assert.is_true(c.needed_n < 200) -- a 2x effect needs fewer trials than were run
    end)

    it("rejects bad input", function()
      assert.same({ nil, "empty sample" }, { stats.compare_latency({}, slow) })
      assert.has_error(function() stats.compare_latency(fast, slow, { alpha = 1 }) end)
      assert.has_error(function() stats.compare_latency(fast, { 1, -2 }) end)
    end)
  end)
end)
