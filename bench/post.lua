-- wrk script: POSTs the bench body to every connection, over and over.
--
-- The body is read from the file named by $BENCH_BODY once, at start-up, so
-- every request carries exactly the same bytes. Only done() is defined
-- besides the request setup: a response() callback would make wrk hand
-- every answer to Lua and slow the load generator down.

local path = os.getenv("BENCH_BODY")
local f = assert(io.open(path, "rb"), "BENCH_BODY must name the body file")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
-- What an SDK would send; the gateway forwards it upstream as is.
wrk.headers["Authorization"] = "Bearer sk-bench-not-a-real-key"

-- One machine-readable line for bench/run.sh; latencies in microseconds.
-- errors.status counts answers that were not 2xx or 3xx.
function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		"BENCH requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d timeout=%d non2xx=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.0f\n",
		summary.requests, summary.duration, summary.bytes,
		e.connect, e.read, e.write, e.timeout, e.status,
		latency:percentile(50), latency:percentile(90), latency:percentile(99),
		latency.max, latency.mean))
end
