-- Certificate issuance load: POST /v1/ca/certificates with one JSON body (a P-256 CSR, profile
-- staff_signing) as the admin. Each request yields a new certificate with a fresh random serial.
--
--   wrk ... -s benches/wrk/issue.lua http://127.0.0.1:PORT -- BODY_JSON_FILE ADMIN_KEY_FILE

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local report = require("report")

local request_text

function init(args)
   local body = report.slurp(args[1])
   local key = report.slurp(args[2]):gsub("%s+$", "")
   -- Built once: request() only returns it (wrk's advice for fast servers).
   request_text = wrk.format("POST", "/v1/ca/certificates", {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. key,
   }, body)
end

function request()
   return request_text
end

done = report.done
