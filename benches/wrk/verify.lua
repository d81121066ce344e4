-- Verification load: POST /v1/verify with one JSON body ({"signature": base64 CMS}) as an API
-- client. Each answer is a new verification report with its receipt: a CAdES B-LT signature by
-- the validation-service key in the HSM, with a signature timestamp from kyso's TSA (a second
-- HSM signature) and a durable row in the verifications table.
--
--   wrk ... -s benches/wrk/verify.lua http://127.0.0.1:PORT -- BODY_JSON_FILE API_KEY_FILE

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local report = require("report")

local request_text

function init(args)
   local body = report.slurp(args[1])
   local key = report.slurp(args[2]):gsub("%s+$", "")
   request_text = wrk.format("POST", "/v1/verify", {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. key,
   }, body)
end

function request()
   return request_text
end

done = report.done
