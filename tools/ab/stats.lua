-- tools/ab/stats.lua — the statistics behind prompt A/B experiments: summaries, a seeded
-- bootstrap, binomial intervals and tests, and the two verdicts prompt designers read
-- (compare_validity for valid-plan rates, compare_latency for response times).
--
--   package.path = "tools/ab/?.lua;" .. package.path
--   local stats = require "stats"
--   stats.compare_validity(41, 50, 30, 50).verdict  --> "A is more valid than B (p = 0.015)"
--
-- Pure Lua 5.4, no modules, no state but a log-factorial table built at load. Every number is
-- computed (the engine's old A/B module returned a constant p-value), checked against R 4.2
-- in tests/unit/ab_stats_spec.lua. Randomness only from the module's own seeded generator, so
-- a bootstrap gives the same bits on every machine. Misuse (wrong types, k > n, unknown
-- option keys) raises; an empty arm returns nil, message. Inputs are only read; results are
-- new tables owned by the caller.

local M = {}

local sqrt, log, exp, floor, abs = math.sqrt, math.log, math.exp, math.floor, math.abs
local huge, max, min = math.huge, math.max, math.min

-- Checks ---------------------------------------------------------------------------------
local function check_opts(opts, allowed, fname)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(fname .. ": opts must be a table", 3) end
  for k in pairs(opts) do
    if not allowed[k] then error(fname .. ": unknown option '" .. tostring(k) .. "'", 3) end
  end
  return opts
end

local function check_sample(xs, fname, positive)
  if type(xs) ~= "table" then error(fname .. ": sample must be an array of numbers", 3) end
  for i = 1, #xs do
    local x = xs[i]
    if type(x) ~= "number" or x ~= x or (positive and x <= 0) then
      error(fname .. ": element " .. i .. " is not a number" .. (positive and " > 0" or ""), 3)
    end
  end
end

-- check_counts(fname, k1, n1, k2, n2, ...): each pair must be integers 0 <= k <= n.
local function check_counts(fname, ...)
  local c = { ... }
  for i = 1, #c, 2 do
    local k, n = c[i], c[i + 1]
    if math.type(k) ~= "integer" or math.type(n) ~= "integer" or k < 0 or n < k then
      error(fname .. ": need integers 0 <= k <= n", 3)
    end
  end
end

local function check_unit(p, fname)
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then error(fname .. ": p not in [0, 1]", 3) end
end

-- A probability option (level, power) strictly inside (0, 1), or its default.
local function check_prob(v, default, what, fname)
  if v == nil then return default end
  if type(v) ~= "number" or not (v > 0 and v < 1) then
    error(fname .. ": " .. what .. " must be in (0, 1)", 3)
  end
  return v
end

-- Random numbers -------------------------------------------------------------------------
-- rng(seed) -> generator with :next() (64-bit integer), :uniform() in [0, 1), :int(n) in
-- 1..n. xorshift64* (S. Vigna, ACM Trans. Math. Softw. 42, 2016: shifts 12, 25, 27, multiplier
-- 0x2545F4914F6CDD1D) on Lua's wrapping integers (>> is logical). The seed, any integer, is
-- mixed by one splitmix64 step (Steele, Lea & Flood 2014) so the state is never 0.
local Rng = {}
Rng.__index = Rng

function M.rng(seed)
  if math.type(seed) ~= "integer" then error("rng: seed must be an integer", 2) end
  local z = seed + 0x9E3779B97F4A7C15
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  z = z ~ (z >> 31)
  return setmetatable({ state = z ~= 0 and z or 1 }, Rng)
end

function Rng:next()
  local x = self.state
  x = x ~ (x >> 12); x = x ~ (x << 25); x = x ~ (x >> 27)
  self.state = x
  return x * 0x2545F4914F6CDD1D
end

function Rng:uniform() return (self:next() >> 11) * 0x1p-53 end -- the top 53 bits
function Rng:int(n) return floor(self:uniform() * n) + 1 end

-- Summaries ------------------------------------------------------------------------------
local function sorted_copy(xs)
  local s = table.move(xs, 1, #xs, 1, {})
  table.sort(s)
  return s
end

-- p-quantile of a sorted array by R's type 7 (Hyndman & Fan 1996, definition 7):
-- h = (n - 1) p + 1, then linear interpolation between s[floor(h)] and the next element.
local function quantile_sorted(s, p)
  local h = (#s - 1) * p + 1
  local lo = floor(h)
  if lo >= #s then return s[#s] end
  return s[lo] + (h - lo) * (s[lo + 1] - s[lo])
end

-- quantile(xs, p) -> number, nil for an empty sample. R: quantile(xs, p, type = 7).
function M.quantile(xs, p)
  check_sample(xs, "quantile")
  check_unit(p, "quantile")
  if #xs == 0 then return nil end
  return quantile_sorted(sorted_copy(xs), p)
end

function M.median(xs) return M.quantile(xs, 0.5) end

-- summary(xs) -> {n, mean, sd, median, p95, min, max}; sd divides by n - 1 (nil when n < 2),
-- quantiles are type 7; an empty sample gives {n = 0}. R: mean, sd, quantile(type = 7).
function M.summary(xs)
  check_sample(xs, "summary")
  local n = #xs
  if n == 0 then return { n = 0 } end
  local s, sum, ss = sorted_copy(xs), 0, 0
  for i = 1, n do sum = sum + s[i] end
  local mean = sum / n
  for i = 1, n do ss = ss + (s[i] - mean) ^ 2 end
  return { n = n, mean = mean, sd = n > 1 and sqrt(ss / (n - 1)) or nil, min = s[1], max = s[n],
           median = quantile_sorted(s, 0.5), p95 = quantile_sorted(s, 0.95) }
end

-- Bootstrap ------------------------------------------------------------------------------
local BOOT_OPTS = { reps = true, level = true, seed = true }

local function boot_settings(opts, fname)
  opts = check_opts(opts, BOOT_OPTS, fname)
  local reps, seed = opts.reps or 2000, opts.seed or 1
  if math.type(reps) ~= "integer" or reps < 10 then error(fname .. ": reps: integer >= 10", 3) end
  if math.type(seed) ~= "integer" then error(fname .. ": seed must be an integer", 3) end
  return reps, check_prob(opts.level, 0.95, "level", fname), seed
end

local function resample(xs, rng, out)
  local n = #xs
  for i = 1, n do out[i] = xs[rng:int(n)] end
  return out
end

-- The percentile interval: type 7 quantiles of the replicates at alpha/2 and 1 - alpha/2.
local function percentile_interval(values, level)
  local s, tail = sorted_copy(values), (1 - level) / 2
  return quantile_sorted(s, tail), quantile_sorted(s, 1 - tail)
end

-- bootstrap_ci(xs, stat_fn, {reps = 2000, level = 0.95, seed = 1}) -> {estimate, lo, hi,
-- reps, level, seed} | nil, "empty sample". Percentile bootstrap (Efron & Tibshirani, An
-- Introduction to the Bootstrap, 1993, ch. 13): `reps` resamples with replacement drawn by
-- rng(seed); stat_fn gets a scratch array it must not keep, and must return a number.
function M.bootstrap_ci(xs, stat_fn, opts)
  check_sample(xs, "bootstrap_ci")
  if type(stat_fn) ~= "function" then error("bootstrap_ci: stat_fn must be a function", 2) end
  local reps, level, seed = boot_settings(opts, "bootstrap_ci")
  if #xs == 0 then return nil, "empty sample" end
  local rng, scratch, values = M.rng(seed), {}, {}
  for r = 1, reps do
    local v = stat_fn(resample(xs, rng, scratch))
    if type(v) ~= "number" or v ~= v then error("bootstrap_ci: stat_fn gave " .. tostring(v), 2) end
    values[r] = v
  end
  local lo, hi = percentile_interval(values, level)
  return { estimate = stat_fn(xs), lo = lo, hi = hi, reps = reps, level = level, seed = seed }
end

-- ratio_of_medians(a, b, {reps, level, seed}) -> {estimate = median(a) / median(b), lo, hi,
-- reps, level, seed, sd_log_a, sd_log_b} | nil, "empty sample". Values must be > 0
-- (durations). Percentile bootstrap, each arm resampled independently from one rng(seed)
-- stream; sd_log_a/b are the bootstrap standard deviations of log median(a*), log median(b*).
function M.ratio_of_medians(a, b, opts)
  check_sample(a, "ratio_of_medians", true)
  check_sample(b, "ratio_of_medians", true)
  local reps, level, seed = boot_settings(opts, "ratio_of_medians")
  if #a == 0 or #b == 0 then return nil, "empty sample" end
  local rng, sa, sb, ratios, la, lb = M.rng(seed), {}, {}, {}, {}, {}
  for r = 1, reps do
    local ma, mb = M.median(resample(a, rng, sa)), M.median(resample(b, rng, sb))
    ratios[r], la[r], lb[r] = ma / mb, log(ma), log(mb)
  end
  local lo, hi = percentile_interval(ratios, level)
  return { estimate = M.median(a) / M.median(b), lo = lo, hi = hi, reps = reps, level = level,
           seed = seed, sd_log_a = M.summary(la).sd, sd_log_b = M.summary(lb).sd }
end

-- The normal distribution ------------------------------------------------------------------
-- erfc(x): W. J. Cody, "Rational Chebyshev approximations for the error function", Math.
-- Comp. 23 (1969) 631-638, coefficients as in Netlib SPECFUN CALERF: three rational
-- approximations (|x| <= 0.46875, <= 4, > 4) good to at least 18 significant digits, so the
-- result is within a few units in the last place. normal_cdf matches R's pnorm to 1e-15
-- relative for |x| <= 10; further out, rounding x / sqrt 2 costs ~x^2 eps (1e-13 at x = -30).
local CA = { 3.16112374387056560e0, 1.13864154151050156e2, 3.77485237685302021e2,
  3.20937758913846947e3, 1.85777706184603153e-1 }
local CB = { 2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3,
  2.84423683343917062e3 }
local CC = { 5.64188496988670089e-1, 8.88314979438837594e0, 6.61191906371416295e1,
  2.98635138197400131e2, 8.81952221241769090e2, 1.71204761263407058e3, 2.05107837782607147e3,
  1.23033935479799725e3, 2.15311535474403846e-8 }
local CD = { 1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2,
  1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3, 3.43936767414372164e3,
  1.23033935480374942e3 }
local CP = { 3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
  1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2 }
local CQ = { 2.56852019228982242e0, 1.87295284992346047e0, 5.27905102951428412e-1,
  6.05183413124413191e-2, 2.33520497626869185e-3 }
local SQRPI = 5.6418958354775628695e-1 -- 1 / sqrt(pi)

-- Cody's evaluation: start from the last numerator coefficient, `steps` Horner steps, then
-- the coefficients at steps + 1 close numerator and denominator.
local function cody_ratio(num, den, steps, t)
  local xnum, xden = num[#num] * t, t
  for i = 1, steps do
    xnum, xden = (xnum + num[i]) * t, (xden + den[i]) * t
  end
  return (xnum + num[steps + 1]) / (xden + den[steps + 1])
end

-- exp(-y^2) without the rounding error of squaring y: y^2 split at a multiple of 1/16.
local function exp_minus_sq(y)
  local ysq = floor(y * 16) / 16
  return exp(-ysq * ysq) * exp(-(y - ysq) * (y + ysq))
end

function M.erfc(x) -- the method is described above the coefficients
  if x ~= x then return x end
  local y, r = abs(x), 0
  if y <= 0.46875 then
    return 1 - x * cody_ratio(CA, CB, 3, y > 1.11e-16 and y * y or 0)
  elseif y <= 4 then
    r = exp_minus_sq(y) * cody_ratio(CC, CD, 7, y)
  elseif y < 26.543 then -- beyond, erfc underflows to 0
    local t = 1 / (y * y)
    r = exp_minus_sq(y) * (SQRPI - t * cody_ratio(CP, CQ, 4, t)) / y
  end
  return x < 0 and 2 - r or r
end

-- normal_cdf(x) = Phi(x) = erfc(-x / sqrt 2) / 2, accurate in both tails. R: pnorm(x).
function M.normal_cdf(x) return 0.5 * M.erfc(-x / sqrt(2)) end

-- P. J. Acklam, "An algorithm for computing the inverse normal cumulative distribution
-- function" (2003): rational approximations of relative error < 1.15e-9, split at 0.02425.
local QA = { -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
  1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00 }
local QB = { -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
  6.680131188771972e+01, -1.328068155288572e+01 }
local QC = { -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
  -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00 }
local QD = { 7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
  3.754408661907416e+00 }

local function horner(c, t)
  local v = 0
  for i = 1, #c do v = v * t + c[i] end
  return v
end

local function acklam(p) -- 0 < p <= 0.5
  if p < 0.02425 then
    local q = sqrt(-2 * log(p))
    return horner(QC, q) / (horner(QD, q) * q + 1)
  end
  local q = p - 0.5
  local r = q * q
  return horner(QA, r) * q / (horner(QB, r) * r + 1)
end

-- normal_quantile(p) = Phi^-1(p): Acklam's approximation and one Halley step on
-- Phi(x) - p with the erfc above (Acklam's own refinement), which gives full double
-- precision; p > 0.5 by symmetry, as 1 - p is exact there. 0 and 1 give -inf, inf. R: qnorm.
function M.normal_quantile(p)
  check_unit(p, "normal_quantile")
  if p > 0.5 then return -M.normal_quantile(1 - p) end
  if p == 0 then return -huge end
  local x = acklam(p)
  local u = (M.normal_cdf(x) - p) * sqrt(2 * math.pi) * exp(x * x / 2)
  return x - u / (1 + x * u / 2)
end

local function z_for(level) return M.normal_quantile(1 - (1 - level) / 2) end

-- Proportions ----------------------------------------------------------------------------
-- wilson(k, n, level = 0.95) -> {lo, hi, estimate = k/n, n, no_data = false}. Wilson score
-- interval (E. B. Wilson, JASA 22, 1927): centre (p + z^2/2n) / (1 + z^2/n), half-width
-- z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n); exactly 0 at k = 0 and 1 at k = n. n = 0 gives
-- {lo = 0, hi = 1, n = 0, no_data = true}, no estimate. R: prop.test(k, n, correct = FALSE).
function M.wilson(k, n, level)
  check_counts("wilson", k, n)
  level = check_prob(level, 0.95, "level", "wilson")
  if n == 0 then return { lo = 0, hi = 1, n = 0, no_data = true } end
  local z, p = z_for(level), k / n
  local z2n = z * z / n
  local centre = (p + z2n / 2) / (1 + z2n)
  local half = z * sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
  return { lo = k == 0 and 0 or max(0, centre - half), hi = k == n and 1 or min(1, centre + half),
           estimate = p, n = n, no_data = false }
end

-- two_proportion_test(k1, n1, k2, n2) -> p_value, z. Pooled z test of p1 = p2, two-sided:
-- z = (p1 - p2) / sqrt(p(1-p)(1/n1 + 1/n2)) with p the pooled rate, p-value erfc(|z|/sqrt 2);
-- 1, 0 when all trials failed or all succeeded. Both n must be > 0.
-- R: prop.test(c(k1, k2), c(n1, n2), correct = FALSE) (X-squared = z^2).
function M.two_proportion_test(k1, n1, k2, n2)
  check_counts("two_proportion_test", k1, n1, k2, n2)
  if n1 == 0 or n2 == 0 then error("two_proportion_test: an arm has no trials", 2) end
  local p = (k1 + k2) / (n1 + n2)
  local se = sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
  if se == 0 then return 1, 0 end
  local z = (k1 / n1 - k2 / n2) / se
  return M.erfc(abs(z) / sqrt(2)), z
end

-- log_factorial(n), n an integer >= 0: sums of logs, tabled at load, up to 256; beyond,
-- Stirling's series to the 1/1260n^5 term, whose error, under 1/(1680 n^7) < 1e-19, is far
-- below the rounding of ln n! (> 1167). R: lfactorial(n).
local LF, LF_MAX = { [0] = 0 }, 256
for i = 1, LF_MAX do LF[i] = LF[i - 1] + log(i) end

function M.log_factorial(n)
  if n <= LF_MAX then return LF[n] end
  local n2 = n * n
  return (n + 0.5) * log(n) - n + 0.5 * log(2 * math.pi)
    + 1 / (12 * n) - 1 / (360 * n * n2) + 1 / (1260 * n * n2 * n2)
end

local function log_choose(n, k)
  return M.log_factorial(n) - M.log_factorial(k) - M.log_factorial(n - k)
end

-- fisher_exact(k1, n1, k2, n2) -> two-sided p-value of Fisher's exact test on the table
-- {{k1, n1 - k1}, {k2, n2 - k2}}. With the margins fixed, k1 is hypergeometric; the p-value
-- is the total probability of tables no more likely than the observed one, with R's relative
-- tolerance 1 + 1e-7 for ties. R: fisher.test(matrix(c(k1, k2, n1 - k1, n2 - k2), 2)).
function M.fisher_exact(k1, n1, k2, n2)
  check_counts("fisher_exact", k1, n1, k2, n2)
  local m = k1 + k2
  local lo, hi, logd, top = max(0, m - n2), min(n1, m), {}, -huge
  for x = lo, hi do
    logd[x] = log_choose(n1, x) + log_choose(n2, m - x)
    top = max(top, logd[x])
  end
  local total, tail, limit = 0, 0, exp(logd[k1] - top) * (1 + 1e-7)
  for x = lo, hi do
    local d = exp(logd[x] - top)
    total = total + d
    if d <= limit then tail = tail + d end
  end
  return min(1, tail / total)
end

-- Verdicts -------------------------------------------------------------------------------
-- "p = 0.041" with as many digits (2 at least) as keep the rounding on p's side of alpha.
local function fmt_p(p, alpha)
  if p < 0.001 then return "p < 0.001" end
  local s
  for digits = 2, 6 do
    s = string.format("%." .. digits .. "g", p)
    if (tonumber(s) < alpha) == (p < alpha) then break end
  end
  return "p = " .. s
end

-- Fisher when an arm has fewer than 30 trials or any observed or expected cell is below 5
-- (Cochran's rule for the expected counts); the pooled z test otherwise.
local function needs_exact(k1, n1, k2, n2)
  if n1 < 30 or n2 < 30 then return true end
  local m, N = k1 + k2, n1 + n2
  return min(k1, n1 - k1, k2, n2 - k2) < 5 or min(m, N - m) * min(n1, n2) / N < 5
end

-- needed_n_proportions(p1, p2, alpha, power) -> trials per arm for a two-sided test at alpha
-- to detect p1 vs p2 with that power (Fleiss, Statistical Methods for Rates and Proportions,
-- 2nd ed. 1981, without continuity correction; the n R's power.prop.test solves for):
--   n = ceil((z_{1-alpha/2} sqrt(2 pbar qbar) + z_power sqrt(p1 q1 + p2 q2))^2 / (p1 - p2)^2)
-- math.huge when p1 = p2.
function M.needed_n_proportions(p1, p2, alpha, power)
  if p1 == p2 then return huge end
  local pbar = (p1 + p2) / 2
  local za, zb = M.normal_quantile(1 - alpha / 2), M.normal_quantile(power)
  local num = za * sqrt(2 * pbar * (1 - pbar)) + zb * sqrt(p1 * (1 - p1) + p2 * (1 - p2))
  return math.ceil((num / (p1 - p2)) ^ 2)
end

local VALIDITY_OPTS = { level = true, power = true }

-- compare_validity(k1, n1, k2, n2, {level = 0.95, power = 0.8}) -> {a, b (Wilson intervals),
-- diff = p1 - p2, diff_lo, diff_hi, level, p_value, test = "fisher" | "z", significant,
-- verdict, needed_n} | nil, message when an arm has no trials. The interval of diff is
-- Newcombe's hybrid score interval from the two Wilson intervals (R. G. Newcombe, Stat. Med.
-- 17 (1998) 873-890, method 10; R: Epi::ci.pd). alpha = 1 - level; significant: p < alpha.
function M.compare_validity(k1, n1, k2, n2, opts)
  check_counts("compare_validity", k1, n1, k2, n2)
  opts = check_opts(opts, VALIDITY_OPTS, "compare_validity")
  local level = check_prob(opts.level, 0.95, "level", "compare_validity")
  local power = check_prob(opts.power, 0.8, "power", "compare_validity")
  if n1 == 0 or n2 == 0 then return nil, "an arm has no trials" end
  local a, b = M.wilson(k1, n1, level), M.wilson(k2, n2, level)
  local p1, p2, alpha = a.estimate, b.estimate, 1 - level
  local test, p = "z", nil
  if needs_exact(k1, n1, k2, n2) then test, p = "fisher", M.fisher_exact(k1, n1, k2, n2)
  else p = M.two_proportion_test(k1, n1, k2, n2) end
  local verdict = "no significant difference"
  if p < alpha then verdict = p1 > p2 and "A is more valid than B" or "B is more valid than A" end
  return {
    a = a, b = b, diff = p1 - p2, level = level, p_value = p, test = test,
    diff_lo = p1 - p2 - sqrt((p1 - a.lo) ^ 2 + (b.hi - p2) ^ 2),
    diff_hi = p1 - p2 + sqrt((a.hi - p1) ^ 2 + (p2 - b.lo) ^ 2),
    significant = p < alpha, verdict = verdict .. " (" .. fmt_p(p, alpha) .. ")",
    needed_n = M.needed_n_proportions(p1, p2, alpha, power),
  }
end

-- needed_n_latency(r, na, nb, alpha, power) -> trials per arm for a latency comparison, from
-- a ratio_of_medians result r on arms of na and nb trials, by the normal approximation on
-- the log scale: var(log median) ~ c / n, so c_a = na sd_log_a^2 (likewise b); with n per
-- arm the log ratio's standard error is sqrt((c_a + c_b) / n), and the power rule gives
--   n = ceil((z_{1-alpha/2} + z_power)^2 (c_a + c_b) / (log ratio)^2), at least 1; math.huge
-- at ratio 1.
function M.needed_n_latency(r, na, nb, alpha, power)
  local d = log(r.estimate)
  if d == 0 then return huge end
  local c = na * r.sd_log_a ^ 2 + nb * r.sd_log_b ^ 2
  local z = M.normal_quantile(1 - alpha / 2) + M.normal_quantile(power)
  return max(1, math.ceil(z * z * c / (d * d)))
end

local LATENCY_OPTS = { level = true, power = true, reps = true, seed = true }

-- compare_latency(a, b, {level = 0.95, power = 0.8, reps = 2000, seed = 1}) -> {ratio =
-- median(a) / median(b), lo, hi, level, significant, verdict, needed_n, sd_log_a, sd_log_b}
-- | nil, "empty sample". Interval from ratio_of_medians; verdict "no significant difference"
-- when it contains 1, else "A is 1.52× faster" (ratio < 1) or "A is 1.52× slower", the
-- factor being max(ratio, 1 / ratio); needed_n from needed_n_latency.
function M.compare_latency(a, b, opts)
  opts = check_opts(opts, LATENCY_OPTS, "compare_latency")
  local level = check_prob(opts.level, 0.95, "level", "compare_latency")
  local power = check_prob(opts.power, 0.8, "power", "compare_latency")
  local r, err = M.ratio_of_medians(a, b, { reps = opts.reps, level = level, seed = opts.seed })
  if not r then return nil, err end
  local ratio, significant = r.estimate, not (r.lo <= 1 and 1 <= r.hi)
  local verdict = significant and string.format("A is %.2f× %s", max(ratio, 1 / ratio),
    ratio < 1 and "faster" or "slower") or "no significant difference"
  return { ratio = ratio, lo = r.lo, hi = r.hi, level = level, significant = significant,
           verdict = verdict, needed_n = M.needed_n_latency(r, #a, #b, 1 - level, power),
           sd_log_a = r.sd_log_a, sd_log_b = r.sd_log_b }
end

return M
