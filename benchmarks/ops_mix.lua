-- The mixed load of bench_ops.py for wrk: 35 % GET a page of 50 requests, 35 % GET one request,
-- 25 % POST a request (Open311 form), 5 % a workflow action (sign). Keys and sizes come from the
-- environment (OPS_INTAKE_KEY, OPS_ADMIN_KEY, OPS_PRELOAD, OPS_LAT, OPS_LON); done() prints JSON.
local intake = os.getenv("OPS_INTAKE_KEY") or ""
local admin = os.getenv("OPS_ADMIN_KEY") or ""
local preload = tonumber(os.getenv("OPS_PRELOAD") or "10000")
local lat = os.getenv("OPS_LAT") or "39.9"
local lon = tonumber(os.getenv("OPS_LON") or "116.4")
local n = 0

request = function()
  n = n + 1
  local r = math.random(100)
  if r <= 35 then
    return wrk.format("GET", "/open311/v2/requests.json?page_size=50&page=" .. math.random(100))
  elseif r <= 70 then
    return wrk.format("GET", "/open311/v2/requests/" .. math.random(preload) .. ".json")
  elseif r <= 95 then
    local body = "api_key=" .. intake .. "&service_code=road_damage&lat=" .. lat ..
      "&long=" .. string.format("%.7f", lon + math.random() * 0.001) .. "&description=bench"
    return wrk.format("POST", "/open311/v2/requests.json",
      {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
  else
    return wrk.format("POST", "/api/v1/requests/" .. math.random(preload) .. "/actions/sign",
      {["Content-Type"] = "application/json", ["X-API-Key"] = admin}, "{}")
  end
end

done = function(summary, latency, requests)
  io.write(string.format('\n{"rps": %.1f, "p50": %.2f, "p99": %.2f, "errors": %d, "non2xx": %d}\n',
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, summary.errors.status))
end
