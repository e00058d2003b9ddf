-- wrk script: bench/record.lua, with each connection pausing a random 0 to
-- 2*PACE_MS ms (mean PACE_MS) before each request, so C connections offer
-- about C*1000/PACE_MS requests/s, less as replies slow down: the achieved
-- rate is what the table reports. bench/load.sh sets PACE_MS from RATE.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "record.lua")
local pace = tonumber(os.getenv("PACE_MS") or "100")
function delay() return math.random(0, 2 * pace) end
