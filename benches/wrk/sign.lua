-- CMS/CAdES signing load: POST /v1/sign/cms with one JSON body (a key, a level, a packaging and
-- one or more base64 documents) as an API client granted the key. Every document of every
-- request is signed anew by the key in the HSM, and each call writes one audit record.
--
--   wrk ... -s benches/wrk/sign.lua http://127.0.0.1:PORT -- BODY_JSON_FILE API_KEY_FILE [PATH]
--
-- PATH (default /v1/sign/cms) lets the same load hit src/bin/http-floor.rs's routes.

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local report = require("report")

local request_text

function init(args)
   local body = report.slurp(args[1])
   local key = report.slurp(args[2]):gsub("%s+$", "")
   -- Built once: request() only returns it (wrk's advice for fast servers).
   request_text = wrk.format("POST", args[3] or "/v1/sign/cms", {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. key,
   }, body)
end

function request()
   return request_text
end

done = report.done
