-- wrk: POST /auth/refresh, each refresh token chained forward.  A thread
-- owns FA_PER_THREAD tokens (from the FA_TOKENS file, one per line) in a
-- queue: request() takes one, response() queues the new token the answer
-- carries, so every token is in at most one request at a time however many
-- connections the thread drives.
local counter = 0
local threads = {}

function setup(thread)
	counter = counter + 1
	thread:set("id", counter)
	table.insert(threads, thread)
end

function init(args)
	local per = tonumber(os.getenv("FA_PER_THREAD"))
	local all = {}
	for line in io.lines(os.getenv("FA_TOKENS")) do table.insert(all, line) end
	queue = {}
	for i = (id - 1) * per + 1, id * per do table.insert(queue, all[i]) end
	failures = 0
end

function request()
	local t = table.remove(queue, 1) or last
	last = t
	return wrk.format("POST", "/auth/refresh",
		{ ["Content-Type"] = "application/json" },
		'{"refreshToken":"' .. t .. '"}')
end

function response(status, headers, body)
	local t = body:match('"refreshToken":"([^"]+)"')
	if status == 200 and t then
		table.insert(queue, t)
	else
		failures = failures + 1
	end
end

function done(summary, latency, requests)
	local f = 0
	for _, t in ipairs(threads) do f = f + t:get("failures") end
	io.write(string.format("non-200 answers: %d\n", f))
end
