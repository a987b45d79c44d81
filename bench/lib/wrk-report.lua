-- wrk-report.lua: makes wrk end with one machine-readable line for bench/compare.sh.
-- wrk measures latency in microseconds; socket errors (connect, read, write, timeout) and
-- responses with a status of 400 or more count in errors.
done = function(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT rps=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f errors=%d requests=%d bytes=%d\n",
    summary.requests / seconds,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean,
    e.connect + e.read + e.write + e.status + e.timeout,
    summary.requests, summary.bytes))
end
