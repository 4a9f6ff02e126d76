-- wrk: POST /auth/login with one user's credentials (FA_EMAIL, FA_PASSWORD).
local body = string.format('{"email":"%s","password":"%s"}',
	os.getenv("FA_EMAIL"), os.getenv("FA_PASSWORD"))
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
