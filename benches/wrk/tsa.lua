-- Timestamp load: POST /tsa cycling through pre-made DER TimeStampReqs (`openssl ts -query
-- -sha256 -cert`, each over a different document, each with its own nonce). Every granted reply
-- is a TSTInfo signed by the TSA key in the HSM with a serial recorded durably first. Each wrk
-- thread starts at a different offset.
--
--   wrk ... -s benches/wrk/tsa.lua http://127.0.0.1:PORT -- LIST_FILE
--
-- LIST_FILE names one DER query file per line.

package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local report = require("report")

local thread_count = 0

function setup(thread)
   thread:set("thread_index", thread_count)
   thread_count = thread_count + 1
end

local requests_text = {}
local next_index = 1

function init(args)
   local list = assert(io.open(args[1], "r"), "cannot open " .. tostring(args[1]))
   for path in list:lines() do
      if path ~= "" then
         local f = assert(io.open(path, "rb"), "cannot open " .. path)
         local body = f:read("*a")
         f:close()
         requests_text[#requests_text + 1] = wrk.format("POST", "/tsa", {
            ["Content-Type"] = "application/timestamp-query",
         }, body)
      end
   end
   list:close()
   assert(#requests_text > 0, "no timestamp queries in " .. args[1])
   next_index = ((thread_index or 0) * 3) % #requests_text + 1
end

function request()
   local r = requests_text[next_index]
   next_index = next_index % #requests_text + 1
   return r
end

done = report.done
