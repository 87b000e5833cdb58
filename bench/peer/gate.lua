-- gate.lua: the bench's peer of the gateway, written the OpenResty way on
-- Debian's nginx, libnginx-mod-http-lua and lua-cjson (see bench/README.md).
--
-- On POST /v1/containers it does what the gateway does for a create: reads
-- the body, parses it (UTF-8 checked, then lua-cjson), checks it field by
-- field against CreateContainerBody of the containers spec (400), applies
-- the policy file the gateway reads (403), re-encodes the decided document,
-- sends it upstream through an internal proxy_pass location with a
-- keep-alive pool (ngx.location.capture, which buffers the answer), checks
-- the answer against what was forwarded (502 on a mismatch) and writes one
-- JSON audit line per request, secrets redacted, through a buffered file.
-- POST /v1/responses gets its code_interpreter and shell containers held
-- to the same rules and is relayed as a stream; any other /v1/ route is
-- checked against the policy's routes and relayed. Every error is in the
-- OpenAI shape {"error":{"message","type","param","code"}}.
--
-- The policy is compiled once, in init_by_lua (the master, before the
-- workers fork): sets of domains, skills and routes, the default network
-- policy and expiry as ready tables, the adjustment texts. The request path
-- allocates what it must (the decoded document, the forwarded text, the
-- audit line) and builds error paths and messages only when it refuses.
--
-- What it does not do that the gateway does: duplicate keys in a body are
-- not refused (lua-cjson keeps the last), numbers are doubles (20.0 passes
-- as the integer 20), an empty [] and {} decode alike, so an empty
-- file_ids or skills list is dropped from the forwarded document rather
-- than re-encoded as {}; no tenants, keys or rate limits; one audit line,
-- not chained or HMAC'd, and no intent line before forwarding; secrets
-- cannot be wiped from Lua strings.

local cjson = require "cjson.safe"

local ngx = ngx
local re_find = ngx.re.find
local ngx_print = ngx.print
local ngx_exit = ngx.exit
local ngx_now = ngx.now
local ngx_var = ngx.var
local req = ngx.req
local capture = ngx.location.capture
local HTTP_POST = ngx.HTTP_POST
local type, pairs, next, tostring, tonumber = type, pairs, next, tostring, tonumber
local floor = math.floor
local str_find, str_sub, str_byte, str_lower, str_format, str_gsub =
	string.find, string.sub, string.byte, string.lower, string.format, string.gsub
local io_open = io.open

local json = cjson.new()
json.decode_max_depth(2048) -- as jansson's parser, which the gateway's follows
json.decode_invalid_numbers(false) -- no NaN, Infinity or hex
json.encode_invalid_numbers(false)
local null = json.null

local _M = {}

-- The compiled policy (init) and the audit file (init_worker).
local P
local audit_path, audit_fh

local MEMORY_RANK = { ["1g"] = 1, ["4g"] = 2, ["16g"] = 3, ["64g"] = 4 }
local MEMORY_SIZES = { "1g", "4g", "16g", "64g" }
local INLINE_MAX = 52690944 -- 70254592 base64 characters, decoded

local INVALID = "invalid_request_error"
local POLICY = "policy_violation"
local UPSTREAM = "upstream_error"

-- --- replies and the audit record --------------------------------------------

local function quote(s)
	-- For messages: printable ASCII as is, anything else escaped, and at
	-- most 64 bytes of it.
	if #s > 64 then
		s = str_sub(s, 1, 64) .. "..."
	end
	return '"' .. str_gsub(s, '[%c"\\\128-\255]', function(c)
		return str_format("\\x%02x", str_byte(c))
	end) .. '"'
end

-- The one way a request is refused: the error in the OpenAI shape, and the
-- record says why.
local function reply_error(rec, status, etype, code, param, message)
	rec.decision = status < 500 and "deny" or "error"
	rec.code = code
	rec.param = param or null
	rec.message = message
	local body = json.encode({ error = { message = message, type = etype, param = param or null, code = code } })
	ngx.status = status
	local h = ngx.header
	h["Content-Type"] = "application/json"
	h["Content-Length"] = #body
	ngx_print(body)
	return ngx_exit(status)
end

local last_sec, last_ts = -1, nil

-- ISO 8601 UTC time with milliseconds; the seconds part is made once a
-- second.
local function timestamp()
	local now = ngx_now()
	local sec = floor(now)
	if sec ~= last_sec then
		last_sec = sec
		last_ts = str_gsub(ngx.utctime(), " ", "T")
	end
	return str_format("%s.%03dZ", last_ts, floor((now - sec) * 1000))
end

local function new_record(operation)
	local rec = {
		type = "request",
		ts = timestamp(),
		request_id = ngx_var.request_id,
		client = ngx_var.remote_addr,
		method = req.get_method(),
		path = ngx_var.uri,
		operation = operation,
		decision = "allow",
		code = null,
		param = null,
		message = null,
	}
	ngx.ctx.rec = rec
	return rec
end

-- The request body, whole: in memory, or read back from nginx's temporary
-- file when it was larger than client_body_buffer_size.
local function read_body()
	req.read_body()
	local body = req.get_body_data()
	if body then
		return body
	end
	local path = req.get_body_file()
	if not path then
		return ""
	end
	local f = io_open(path, "rb")
	if not f then
		return nil
	end
	body = f:read("*a")
	f:close()
	return body
end

-- Parses a JSON object body; on failure replies 400 and returns nil.
local function parse_object(rec, body)
	rec.bytes_in = #body
	-- PCRE checks the subject's UTF-8 before it matches anything; a raw
	-- control character is JSON nowhere but as whitespace, and the gateway
	-- takes no NUL in a string, escaped or not.
	if #body > 0 then
		local from, _, err = re_find(body, [=[[\x00-\x08\x0b\x0c\x0e-\x1f]]=], "ujo")
		if from or err then
			return reply_error(rec, 400, INVALID, "invalid_json", nil,
				err and "the body is not valid UTF-8" or "the body holds a raw control character")
		end
		if str_find(body, "\\u0000", 1, true) then
			return reply_error(rec, 400, INVALID, "invalid_json", nil, "a string holds \\u0000, which this gateway refuses")
		end
	end
	local doc, err = json.decode(body)
	if doc == nil then
		return reply_error(rec, 400, INVALID, "invalid_json", nil, "the body is not valid JSON: " .. tostring(err))
	end
	if type(doc) ~= "table" or doc[1] ~= nil or (next(doc) == nil and str_find(body, "^%s*%[")) then
		return reply_error(rec, 400, INVALID, "invalid_json", nil, "body must be a JSON object")
	end
	return doc
end

-- --- the contract: CreateContainerBody and the tool containers ----------------
--
-- Each check returns nothing when the value is good, or code, param,
-- message. lua-cjson makes a JSON object a table with string keys and an
-- array one with keys 1..n, so t[1] tells them apart (but for {} and []).

local function is_object(v)
	return type(v) == "table" and v[1] == nil
end

local function is_array(v)
	return type(v) == "table" and (v[1] ~= nil or next(v) == nil)
end

-- Doubles hold every integer of the gateway's int64 range only
-- approximately past 2^53; compared with a policy's maximum they still
-- decide alike.
local function is_integer(v)
	return type(v) == "number" and v == floor(v) and v >= -9223372036854775808 and v <= 9223372036854775808
end

local function type_name(v)
	local t = type(v)
	if t == "string" then
		return "a string"
	elseif t == "number" then
		return is_integer(v) and "an integer" or "a number with a fraction or exponent"
	elseif t == "boolean" then
		return "a boolean"
	elseif t == "table" then
		return v[1] ~= nil and "an array" or "an object"
	end
	return "null"
end

local function at(path, key)
	return path == "" and key or path .. "." .. key
end

local function idx(path, i)
	return path .. "[" .. (i - 1) .. "]"
end

local function wrong(path, want, v)
	return "invalid_type", path, str_format("%s must be %s; got %s", path == "" and "the body" or path, want, type_name(v))
end

local function missing(path)
	return "missing_required_parameter", path, path .. " is required"
end

-- Unknown keys: the first one found is named; in param only when it is
-- short printable ASCII (it could be anything, even a secret), else the
-- param names the parent.
local function unknown(obj, allowed, list, path)
	for k in pairs(obj) do
		if not allowed[k] then
			local p = path ~= "" and path or nil
			if #k > 0 and #k <= 128 and not str_find(k, "[^\32-\126]") then
				p = at(path, k)
			end
			return "unknown_parameter", p,
				str_format("unknown field %s in %s; allowed fields are %s", quote(k),
					path == "" and "the body" or path, list)
		end
	end
end

-- Code points in a UTF-8 string (the body was checked to be UTF-8).
local function chars(s)
	local _, n = str_gsub(s, "[^\128-\191]", "")
	return n
end

-- A string of min..max code points (max nil: no limit). Never quotes the
-- value back, so it serves for secrets too.
local function check_string(v, path, min, max)
	if type(v) ~= "string" then
		return wrong(path, "a string", v)
	end
	local n = #v
	if n < min then
		return "string_too_short", path, str_format("%s must be at least %d character%s long", path, min, min == 1 and "" or "s")
	end
	if max and n > max then
		local c = chars(v)
		if c > max then
			return "string_too_long", path, str_format("%s must be at most %d characters long; got %d", path, max, c)
		end
	end
end

local function check_enum(v, path, set, list)
	if type(v) ~= "string" then
		return wrong(path, "a string", v)
	end
	if not set[v] then
		return "invalid_value", path, str_format("%s must be %s; got %s", path, list, quote(v))
	end
end

-- A required member's path and value, or the missing error.
local function need(obj, key, path)
	local v = obj[key]
	if v == nil then
		return nil, missing(at(path, key))
	end
	return v
end

local MEMORY_LIST = 'one of "1g", "4g", "16g", "64g"'

local function check_memory(v, path, nullable)
	if nullable and v == null then
		return
	end
	return check_enum(v, path, MEMORY_RANK, MEMORY_LIST)
end

local function check_file_ids(v, path, max)
	if not is_array(v) then
		return wrong(path, "an array", v)
	end
	local n = #v
	if max and n > max then
		return "array_too_long", path, str_format("%s must have at most %d items; got %d", path, max, n)
	end
	for i = 1, n do
		if type(v[i]) ~= "string" then
			return wrong(idx(path, i), "a string", v[i])
		end
	end
end

local EXPIRES_KEYS = { anchor = true, minutes = true }
local ANCHORS = { last_active_at = true }

local function check_expires(v, path)
	if not is_object(v) then
		return wrong(path, "an object", v)
	end
	local c, p, m = unknown(v, EXPIRES_KEYS, "anchor, minutes", path)
	if c then
		return c, p, m
	end
	local a, c2, p2, m2 = need(v, "anchor", path)
	if c2 then
		return c2, p2, m2
	end
	c, p, m = check_enum(a, path .. ".anchor", ANCHORS, '"last_active_at"')
	if c then
		return c, p, m
	end
	local minutes
	minutes, c, p, m = need(v, "minutes", path)
	if c then
		return c, p, m
	end
	if not is_integer(minutes) then
		return wrong(path .. ".minutes", "an integer", minutes)
	end
	if minutes < 1 then
		return "integer_too_small", path .. ".minutes", str_format("%s.minutes must be at least 1; got %d", path, minutes)
	end
end

local SKILL_TYPES = 'one of "skill_reference", "inline"'
local REFERENCE_KEYS = { type = true, skill_id = true, version = true }
local INLINE_KEYS = { type = true, name = true, description = true, source = true }
local SOURCE_KEYS = { type = true, media_type = true, data = true }
local INLINE_STRINGS = { "name", "description" }
local BASE64 = { base64 = true }
local ZIP = { ["application/zip"] = true }

local function check_skill(s, path)
	if not is_object(s) then
		return wrong(path, "an object", s)
	end
	local t = s.type
	if t == nil then
		return "missing_required_parameter", path .. ".type", path .. ".type is required; " .. SKILL_TYPES
	end
	if type(t) ~= "string" then
		return "invalid_type", path .. ".type", str_format("%s.type must be a string, %s; got %s", path, SKILL_TYPES, type_name(t))
	end
	local c, p, m, v
	if t == "skill_reference" then
		c, p, m = unknown(s, REFERENCE_KEYS, "type, skill_id, version", path)
		if c then
			return c, p, m
		end
		v, c, p, m = need(s, "skill_id", path)
		if c then
			return c, p, m
		end
		c, p, m = check_string(v, path .. ".skill_id", 1, 64)
		if c then
			return c, p, m
		end
		v = s.version
		if v ~= nil then
			if type(v) ~= "string" then
				return wrong(path .. ".version", "a string", v)
			end
			if v ~= "latest" and not re_find(v, [[^[1-9][0-9]{0,17}$]], "jo") then
				return "invalid_value", path .. ".version",
					str_format('%s.version must be a positive integer of at most 18 digits, or "latest"; got %s', path, quote(v))
			end
		end
		return
	elseif t == "inline" then
		c, p, m = unknown(s, INLINE_KEYS, "type, name, description, source", path)
		if c then
			return c, p, m
		end
		for k = 1, 2 do
			local key = INLINE_STRINGS[k]
			v, c, p, m = need(s, key, path)
			if c then
				return c, p, m
			end
			if type(v) ~= "string" then
				return wrong(path .. "." .. key, "a string", v)
			end
		end
		local src
		src, c, p, m = need(s, "source", path)
		if c then
			return c, p, m
		end
		local sp = path .. ".source"
		if not is_object(src) then
			return wrong(sp, "an object", src)
		end
		c, p, m = unknown(src, SOURCE_KEYS, "type, media_type, data", sp)
		if c then
			return c, p, m
		end
		v, c, p, m = need(src, "type", sp)
		if c then
			return c, p, m
		end
		c, p, m = check_enum(v, sp .. ".type", BASE64, '"base64"')
		if c then
			return c, p, m
		end
		v, c, p, m = need(src, "media_type", sp)
		if c then
			return c, p, m
		end
		c, p, m = check_enum(v, sp .. ".media_type", ZIP, '"application/zip"')
		if c then
			return c, p, m
		end
		v, c, p, m = need(src, "data", sp)
		if c then
			return c, p, m
		end
		return check_string(v, sp .. ".data", 1, 70254592)
	end
	return "invalid_value", path .. ".type", str_format("%s.type must be %s; got %s", path, SKILL_TYPES, quote(t))
end

local function check_skills(v, path, max)
	if not is_array(v) then
		return wrong(path, "an array", v)
	end
	local n = #v
	if max and n > max then
		return "array_too_long", path, str_format("%s must have at most %d items; got %d", path, max, n)
	end
	for i = 1, n do
		local c, p, m = check_skill(v[i], idx(path, i))
		if c then
			return c, p, m
		end
	end
end

local NP_TYPES = 'one of "disabled", "allowlist"'
local DISABLED_KEYS = { type = true }
local ALLOWLIST_KEYS = { type = true, allowed_domains = true, domain_secrets = true }
local SECRET_KEYS = { domain = true, name = true, value = true }

local function check_network(np, path)
	if not is_object(np) then
		return wrong(path, "an object", np)
	end
	local t = np.type
	if t == nil then
		return "missing_required_parameter", path .. ".type", path .. ".type is required; " .. NP_TYPES
	end
	if type(t) ~= "string" then
		return "invalid_type", path .. ".type", str_format("%s.type must be a string, %s; got %s", path, NP_TYPES, type_name(t))
	end
	if t == "disabled" then
		return unknown(np, DISABLED_KEYS, "type", path)
	end
	if t ~= "allowlist" then
		return "invalid_value", path .. ".type", str_format("%s.type must be %s; got %s", path, NP_TYPES, quote(t))
	end
	local c, p, m = unknown(np, ALLOWLIST_KEYS, "type, allowed_domains, domain_secrets", path)
	if c then
		return c, p, m
	end
	local ds
	ds, c, p, m = need(np, "allowed_domains", path)
	if c then
		return c, p, m
	end
	local dp = path .. ".allowed_domains"
	if not is_array(ds) then
		return wrong(dp, "an array", ds)
	end
	if #ds < 1 then
		return "array_too_short", dp, dp .. " must have at least 1 item"
	end
	for i = 1, #ds do
		if type(ds[i]) ~= "string" then
			return wrong(idx(dp, i), "a string", ds[i])
		end
	end
	local secrets = np.domain_secrets
	if secrets == nil then
		return
	end
	local sp = path .. ".domain_secrets"
	if not is_array(secrets) then
		return wrong(sp, "an array", secrets)
	end
	if #secrets < 1 then
		return "array_too_short", sp, sp .. " must have at least 1 item"
	end
	for i = 1, #secrets do
		local s, ip = secrets[i], idx(sp, i)
		if not is_object(s) then
			return wrong(ip, "an object", s)
		end
		c, p, m = unknown(s, SECRET_KEYS, "domain, name, value", ip)
		if c then
			return c, p, m
		end
		local v
		v, c, p, m = need(s, "domain", ip)
		if c then
			return c, p, m
		end
		c, p, m = check_string(v, ip .. ".domain", 1)
		if c then
			return c, p, m
		end
		v, c, p, m = need(s, "name", ip)
		if c then
			return c, p, m
		end
		c, p, m = check_string(v, ip .. ".name", 1)
		if c then
			return c, p, m
		end
		v, c, p, m = need(s, "value", ip)
		if c then
			return c, p, m
		end
		c, p, m = check_string(v, ip .. ".value", 1, 10485760)
		if c then
			return c, p, m
		end
	end
end

local CREATE_KEYS = {
	name = true, file_ids = true, expires_after = true, skills = true,
	memory_limit = true, network_policy = true,
}
local CREATE_LIST = "name, file_ids, expires_after, skills, memory_limit, network_policy"

local function check_create(doc)
	local c, p, m = unknown(doc, CREATE_KEYS, CREATE_LIST, "")
	if c then
		return c, p, m
	end
	local v = doc.name
	if v == nil then
		return missing("name")
	end
	if type(v) ~= "string" then
		return wrong("name", "a string", v)
	end
	v = doc.file_ids
	if v ~= nil then
		c, p, m = check_file_ids(v, "file_ids")
		if c then
			return c, p, m
		end
	end
	v = doc.expires_after
	if v ~= nil then
		c, p, m = check_expires(v, "expires_after")
		if c then
			return c, p, m
		end
	end
	v = doc.skills
	if v ~= nil then
		c, p, m = check_skills(v, "skills")
		if c then
			return c, p, m
		end
	end
	v = doc.memory_limit
	if v ~= nil then
		c, p, m = check_memory(v, "memory_limit")
		if c then
			return c, p, m
		end
	end
	v = doc.network_policy
	if v ~= nil then
		return check_network(v, "network_policy")
	end
end

-- --- domains --------------------------------------------------------------------

-- A plain hostname, lower case, two or more labels, an optional leading
-- "*." (allowed or not is decided after).
local HOST_RE = [[^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$]]
-- A last label that reads as a number (and so an IPv4 address, or close).
local NUMERIC_RE = [[\.(?:[0-9]+|0x[0-9a-f]*)$]]

-- Why s (lower case, the trailing dot gone) is not a hostname: the slow
-- path, taken only for a refusal.
local function why_not(s, wild)
	if s == "" then
		return "it is empty"
	elseif str_find(s, "%z") then
		return "it contains a NUL byte"
	elseif str_find(s, "%s") then
		return "it contains whitespace"
	elseif str_find(s, "%c") then
		return "it contains a control character"
	elseif str_find(s, "[\128-\255]") then
		return "it contains non-ASCII characters (write them in the xn-- punycode form)"
	elseif str_find(s, "://", 1, true) then
		return "it is a URL; give only the hostname"
	elseif str_find(s, "@", 1, true) then
		return "it contains userinfo ('@')"
	elseif str_find(s, ":.*:") and not str_find(s, "[^0-9a-f:%.%[%]]") then
		return "it is an IPv6 address"
	elseif str_find(s, ":", 1, true) then
		return "it contains a port"
	elseif str_find(s, "/", 1, true) then
		return "it contains a path"
	elseif str_find(s, "[?#]") then
		return "it contains a query or fragment ('?' or '#')"
	elseif str_find(s, "%", 1, true) then
		return "it contains percent-encoding"
	elseif str_find(s, "\\", 1, true) then
		return "it contains a backslash"
	elseif str_find(s, "_", 1, true) then
		return "it contains '_', which hostnames do not allow"
	elseif str_find(s, "[,;]") then
		return "it lists more than one domain; give one per entry"
	elseif str_find(s, "[^a-z0-9%.%-%*]") then
		return "it contains characters outside letters, digits, '-' and '.'"
	elseif str_find(s, "*", 1, true) then
		if not wild then
			return "wildcards are not allowed here"
		end
		if not str_find(s, "^%*%.[^%*]*$") then
			return 'a wildcard must be a leading "*." label, as in "*.example.com"'
		end
		if not str_find(s, ".", 3, true) then
			return 'a wildcard must cover two or more labels, as in "*.example.com"'
		end
		s = str_sub(s, 3)
	end
	if str_find(s, "..", 1, true) or str_byte(s, 1) == 46 then
		return "it has an empty label"
	elseif not str_find(s, ".", 1, true) then
		return "it has only one label"
	elseif str_find(s, "^%-") or str_find(s, "%-$") or str_find(s, "%-%.") or str_find(s, "%.%-") then
		return "a label starts or ends with '-'"
	end
	return "a label is longer than 63 characters"
end

-- The normalized name, or nil and why not.
local function normalize(s, wild)
	local n = #s
	if n > 0 and str_byte(s, n) == 46 then
		s = str_sub(s, 1, n - 1)
		n = n - 1
	end
	if n > 253 then
		return nil, "it is longer than 253 characters"
	end
	s = str_lower(s)
	if not re_find(s, HOST_RE, "jo") then
		return nil, why_not(s, wild)
	end
	if str_byte(s, 1) == 42 and not wild then
		return nil, "wildcards are not allowed here"
	end
	if re_find(s, NUMERIC_RE, "jo") then
		return nil, str_find(s, "^[0-9x.a-f]+$") and "it is an IP address" or "its last label is a number"
	end
	return s
end

-- Whether a set {exact = {}, wild = {}, any = bool} covers the normalized
-- name: one lookup for the name, then one per label from the left for the
-- "*." patterns ("*.example.org" is wild["example.org"]).
local function covers(set, name)
	if set.any or set.exact[name] then
		return true
	end
	local wild = set.wild
	local pos = str_find(name, ".", 1, true)
	while pos do
		if wild[str_sub(name, pos + 1)] then
			return true
		end
		pos = str_find(name, ".", pos + 1, true)
	end
	return false
end

local function domain_set(list)
	local set = { exact = {}, wild = {}, any = false }
	for i = 1, #list do
		local d = list[i]
		if str_byte(d, 1) == 42 then
			set.wild[str_sub(d, 3)] = true
		else
			set.exact[d] = true
		end
	end
	return set
end

-- --- the policy -------------------------------------------------------------------

local function deny(code, param, message)
	return code, param, message
end

local function adjust(rec, text)
	local a = rec.adjustments
	if a == nil then
		rec.adjustments = { text }
	else
		a[#a + 1] = text
	end
end

local function decoded_size(s)
	local n = #s
	local size = floor(n / 4) * 3
	if n % 4 ~= 0 then
		size = size + n % 4 - 1
	elseif n >= 2 and str_byte(s, n) == 61 then
		size = size - (str_byte(s, n - 1) == 61 and 2 or 1)
	end
	return size
end

local function apply_memory(cfg, path, rec)
	local m = cfg.memory_limit
	if m == nil or m == null then
		cfg.memory_limit = P.mem_default
		adjust(rec, P.adjust_memory[path])
		return
	end
	if MEMORY_RANK[m] <= P.mem_max_rank then
		return
	end
	local name = at(path, "memory_limit")
	if P.clamp then
		cfg.memory_limit = P.mem_max
		adjust(rec, str_format('%s "%s" lowered to this organization\'s maximum "%s"', name, m, P.mem_max))
		return
	end
	return deny("memory_limit_exceeded", name,
		str_format('%s "%s" exceeds this organization\'s maximum "%s"', name, m, P.mem_max))
end

local function apply_expiry(cfg, rec)
	local e = cfg.expires_after
	if e == nil then
		cfg.expires_after = P.exp_default
		adjust(rec, P.adjust_expiry)
		return
	end
	if e.minutes > P.exp_max then
		return deny("expires_after_exceeded", "expires_after.minutes",
			str_format("expires_after.minutes %d exceeds this organization's maximum of %d minutes", e.minutes, P.exp_max))
	end
end

local function apply_network(cfg, path, rec)
	local np = cfg.network_policy
	local name = at(path, "network_policy")
	if np == nil then
		cfg.network_policy = P.np_default
		adjust(rec, P.adjust_network[path])
		return
	end
	if np.type ~= "allowlist" then
		return
	end
	local ds = np.allowed_domains
	local list = name .. ".allowed_domains"
	if #ds > P.max_domains then
		return deny("too_many_domains", list,
			str_format("%s lists %d domains; this organization's policy allows at most %d (network_policy.max_domains)", list, #ds, P.max_domains))
	end
	for i = 1, #ds do
		local norm, why = normalize(ds[i], P.allow_wildcards)
		if not norm then
			local p = idx(list, i)
			return deny("domain_invalid", p, str_format("%s %s is not a plain DNS hostname: %s", p, quote(ds[i]), why))
		end
		if not covers(P.domains, norm) then
			local p = idx(list, i)
			return deny("domain_not_allowed", p,
				str_format('%s "%s" is not allowed by this organization\'s policy; %s', p, norm, P.domains_text))
		end
		ds[i] = norm
	end
	local secrets = np.domain_secrets
	if secrets == nil then
		return
	end
	local sp = name .. ".domain_secrets"
	if not P.allow_secrets then
		return deny("domain_secrets_not_allowed", sp,
			sp .. " is not allowed by this organization's policy; remove the secrets from the request")
	end
	if #secrets > P.max_secrets then
		return deny("too_many_domain_secrets", sp,
			str_format("%s lists %d secrets; this organization's policy allows at most %d (network_policy.max_domain_secrets)", sp, #secrets, P.max_secrets))
	end
	-- The request's own allowlist, to hold its secrets against.
	local listed = domain_set(ds)
	for i = 1, #secrets do
		local s = secrets[i]
		local norm, why = normalize(s.domain, false)
		local p = idx(sp, i) .. ".domain"
		if not norm then
			return deny("domain_invalid", p, str_format("%s %s is not a plain DNS hostname: %s", p, quote(s.domain), why))
		end
		if not covers(listed, norm) then
			return deny("secret_domain_not_allowed", p,
				str_format('%s "%s" is not in %s; a secret may only be sent to an allowed domain', p, norm, list))
		end
		s.domain = norm
	end
end

local function apply_skills(cfg, path, rec)
	local skills = cfg.skills
	if skills == nil then
		return
	end
	local name = at(path, "skills")
	if #skills > P.max_skills then
		return deny("too_many_skills", name,
			str_format("%s lists %d skills; this organization's policy allows at most %d (skills.max_count)", name, #skills, P.max_skills))
	end
	for i = 1, #skills do
		local s = skills[i]
		if s.type == "skill_reference" then
			if not (P.any_skill or P.skills[s.skill_id]) then
				local p = idx(name, i) .. ".skill_id"
				return deny("skill_not_allowed", p,
					str_format("%s %s is not in this organization's allowed skills", p, quote(s.skill_id)))
			end
		else
			local p = idx(name, i)
			if not P.allow_inline then
				return deny("inline_skill_not_allowed", p,
					p .. " is an inline skill, which this organization's policy does not allow; reference an uploaded skill by skill_id")
			end
			local size = decoded_size(s.source.data)
			if size > P.max_inline then
				return deny("inline_skill_too_large", p,
					str_format("%s is an inline skill of %d bytes; this organization's policy allows at most %d", p, size, P.max_inline))
			end
		end
	end
end

local function apply_files(cfg, path)
	local f = cfg.file_ids
	if f ~= nil and #f > P.max_file_ids then
		local name = at(path, "file_ids")
		return deny("too_many_file_ids", name,
			str_format("%s lists %d files; this organization's policy allows at most %d (file_ids.max_count)", name, #f, P.max_file_ids))
	end
end

-- The policy over one container's config (a create body at path "", or a
-- tool's container); changes cfg into the document to forward.
local function apply_container(cfg, path, rec, expiry)
	local c, p, m = apply_memory(cfg, path, rec)
	if not c and expiry then
		c, p, m = apply_expiry(cfg, rec)
	end
	if not c then
		c, p, m = apply_network(cfg, path, rec)
	end
	if not c then
		c, p, m = apply_skills(cfg, path, rec)
	end
	if not c then
		c, p, m = apply_files(cfg, path)
	end
	return c, p, m
end

-- lua-cjson writes an empty table as {}: an empty list is dropped instead,
-- which the contract reads the same (no files, no skills).
local function drop_empty(cfg)
	local v = cfg.file_ids
	if v ~= nil and next(v) == nil then
		cfg.file_ids = nil
	end
	v = cfg.skills
	if v ~= nil and next(v) == nil then
		cfg.skills = nil
	end
end

-- The network policy as the audit line shows it: secret values redacted.
local function redacted(np)
	local secrets = np and np.domain_secrets
	if secrets == nil then
		return np
	end
	local out = {}
	for i = 1, #secrets do
		local s = secrets[i]
		out[i] = { domain = s.domain, name = s.name, value = "[REDACTED]" }
	end
	return { type = np.type, allowed_domains = np.allowed_domains, domain_secrets = out }
end

-- --- the answer check ----------------------------------------------------------

local function violation(list, field, forwarded, returned)
	list[#list + 1] = { field = field, forwarded = forwarded == nil and null or forwarded, returned = returned }
	return list
end

-- The upstream's answer to a create, against ContainerResource and what
-- was forwarded. Returns the container, or nil and why it is unusable; a
-- list of violations when it differs from what was asked.
local function check_answer(doc, body)
	local got = json.decode(body)
	if not is_object(got) or next(got) == nil then
		return nil, "the upstream answered the create call with something other than a JSON object"
	end
	if type(got.id) ~= "string" or got.id == "" or type(got.object) ~= "string" or type(got.name) ~= "string"
		or not is_integer(got.created_at) or type(got.status) ~= "string" then
		return nil, "the upstream's answer to the create call is not a container object"
	end
	local v
	local m = got.memory_limit
	if type(m) == "string" and m ~= doc.memory_limit then
		v = violation(v or {}, "memory_limit", doc.memory_limit, m)
	end
	local e = got.expires_after
	if is_object(e) and is_integer(e.minutes) and e.minutes > doc.expires_after.minutes then
		v = violation(v or {}, "expires_after.minutes", doc.expires_after.minutes, e.minutes)
	end
	local np, want = got.network_policy, doc.network_policy
	if is_object(np) then
		if np.type ~= want.type then
			v = violation(v or {}, "network_policy.type", want.type, np.type)
		elseif is_array(np.allowed_domains) and next(np.allowed_domains) ~= nil then
			local fwd = domain_set(want.allowed_domains or {})
			local ds = np.allowed_domains
			for i = 1, #ds do
				local norm = type(ds[i]) == "string" and normalize(ds[i], true)
				if not norm or not covers(fwd, norm) then
					v = violation(v or {}, idx("network_policy.allowed_domains", i), nil, ds[i])
				end
			end
		end
	end
	return got, nil, v
end

-- --- the handlers ----------------------------------------------------------------

local function json_content_type()
	local ct = ngx_var.content_type
	return ct ~= nil and (ct == "application/json" or str_find(ct, "^application/json[; ]") ~= nil)
end

-- POST /v1/containers (content_by_lua).
function _M.create()
	local rec = new_record("CreateContainer")
	if not json_content_type() then
		return reply_error(rec, 415, INVALID, "unsupported_media_type", nil,
			"POST /v1/containers takes a JSON body; send Content-Type: application/json")
	end
	local body = read_body()
	if body == nil then
		return reply_error(rec, 500, "server_error", "internal_error", nil, "the request body could not be read")
	end
	local doc = parse_object(rec, body)
	if doc == nil then
		return
	end
	body = nil -- the raw bytes may hold secrets; they are not needed again

	local c, p, m = check_create(doc)
	if c then
		return reply_error(rec, 400, INVALID, c, p, m)
	end
	c, p, m = apply_container(doc, "", rec, true)
	rec.memory_limit = doc.memory_limit
	rec.network_policy = redacted(doc.network_policy)
	if c then
		return reply_error(rec, 403, POLICY, c, p, m)
	end
	drop_empty(doc)
	local fwd = json.encode(doc)

	local t0 = ngx_now()
	local res = capture("/_upstream/containers", { method = HTTP_POST, body = fwd })
	fwd = nil
	rec.upstream_ms = floor((ngx_now() - t0) * 1e6 + 0.5) / 1000
	rec.upstream_status = res.status
	if res.truncated or res.status == 502 or res.status == 504 then
		return reply_error(rec, 502, UPSTREAM, "upstream_unavailable", nil, "the upstream could not be reached or broke off its answer")
	end
	if res.status < 200 or res.status > 299 then
		-- The upstream's own refusal goes back as it came.
		rec.decision = "error"
		ngx.status = res.status
		ngx.header["Content-Type"] = res.header["Content-Type"]
		ngx.header["Content-Length"] = #res.body
		ngx_print(res.body)
		return ngx_exit(res.status)
	end
	local got, why, violations = check_answer(doc, res.body)
	if got == nil then
		return reply_error(rec, 502, UPSTREAM, "bad_upstream_response", nil, why)
	end
	rec.container_id = got.id
	if violations then
		rec.violations = violations
		if P.block then
			return reply_error(rec, 502, UPSTREAM, "upstream_violation", nil,
				"the upstream created container " .. got.id .. " with more than was asked for, so this gateway withheld it; see the audit record of this request for the differences")
		end
	end
	local out = res.body
	ngx.status = 200
	local h = ngx.header
	h["Content-Type"] = "application/json"
	h["Content-Length"] = #out
	ngx_print(out)
end

-- The Responses tools that make containers, and their configs' keys.
local AUTO_KEYS = { type = true, file_ids = true, memory_limit = true, network_policy = true }
local AUTO_LIST = "type, file_ids, memory_limit, network_policy"
local CONTAINER_AUTO_KEYS = { type = true, file_ids = true, memory_limit = true, network_policy = true, skills = true }
local CONTAINER_AUTO_LIST = "type, file_ids, memory_limit, network_policy, skills"

-- A tool's container config against its contract (file_ids at most 50,
-- skills at most 200, memory_limit may be null, no expiry).
local function check_tool_container(cfg, path, keys, list)
	local c, p, m = unknown(cfg, keys, list, path)
	if c then
		return c, p, m
	end
	if cfg.file_ids ~= nil then
		c, p, m = check_file_ids(cfg.file_ids, path .. ".file_ids", 50)
		if c then
			return c, p, m
		end
	end
	if cfg.memory_limit ~= nil then
		c, p, m = check_memory(cfg.memory_limit, path .. ".memory_limit", true)
		if c then
			return c, p, m
		end
	end
	if cfg.network_policy ~= nil then
		c, p, m = check_network(cfg.network_policy, path .. ".network_policy")
		if c then
			return c, p, m
		end
	end
	if cfg.skills ~= nil then
		return check_skills(cfg.skills, path .. ".skills", 200)
	end
end

-- Each code_interpreter and shell tool of a Responses body that makes a
-- container: checked and decided. Returns whether the body changed, or the
-- status and error.
local function decide_tools(doc, rec)
	local tools = doc.tools
	if tools == nil or tools == null then
		return false
	end
	if not is_array(tools) then
		return nil, 400, INVALID, wrong("tools", "an array", tools)
	end
	local changed = false
	for i = 1, #tools do
		local t, tp = tools[i], idx("tools", i)
		local cfg, path, keys, list
		if is_object(t) and t.type == "code_interpreter" and is_object(t.container) then
			cfg, path, keys, list = t.container, tp .. ".container", AUTO_KEYS, AUTO_LIST
			if cfg.type ~= "auto" then
				return nil, 400, INVALID, "invalid_value", path .. ".type", path .. '.type must be "auto"'
			end
		elseif is_object(t) and t.type == "shell" and is_object(t.environment) and t.environment.type == "container_auto" then
			cfg, path, keys, list = t.environment, tp .. ".environment", CONTAINER_AUTO_KEYS, CONTAINER_AUTO_LIST
		end
		if cfg then
			local c, p, m = check_tool_container(cfg, path, keys, list)
			if c then
				return nil, 400, INVALID, c, p, m
			end
			c, p, m = apply_container(cfg, path, rec, false)
			if c then
				return nil, 403, POLICY, c, p, m
			end
			drop_empty(cfg)
			changed = true
		end
	end
	return changed
end

-- Whether the policy lets the operation through.
local function route_allowed(op)
	local v = P.routes[op]
	if v == nil then
		return P.routes_default
	end
	return v
end

-- POST /v1/responses (access_by_lua; proxy_pass relays the stream).
function _M.responses()
	local rec = new_record("createResponse")
	if not route_allowed("createResponse") then
		return reply_error(rec, 403, POLICY, "route_denied", nil, "createResponse is not allowed by this organization's policy")
	end
	if not json_content_type() then
		return reply_error(rec, 415, INVALID, "unsupported_media_type", nil,
			"createResponse takes a JSON body; send Content-Type: application/json")
	end
	local body = read_body()
	if body == nil then
		return reply_error(rec, 500, "server_error", "internal_error", nil, "the request body could not be read")
	end
	local doc = parse_object(rec, body)
	if doc == nil then
		return
	end
	if is_object(doc.prompt) and not P.allow_prompts then
		return reply_error(rec, 403, POLICY, "stored_prompt_not_allowed", "prompt",
			"a stored prompt may carry tools this gateway cannot check, so this organization's policy refuses it (responses.allow_stored_prompts); send the prompt's instructions and tools in the request instead")
	end
	local changed, status, etype, c, p, m = decide_tools(doc, rec)
	if changed == nil then
		return reply_error(rec, status, etype, c, p, m)
	end
	-- Only a body the policy changed is written anew: lua-cjson cannot
	-- tell [] from {} in the rest of a Responses body.
	if changed then
		req.set_body_data(json.encode(doc))
	end
end

-- Events of a relayed stream (body_filter_by_lua): one that names a
-- container is noted for the record, as the gateway notes those a call
-- made.
function _M.events()
	local chunk = ngx.arg[1]
	if chunk ~= "" and str_find(chunk, "container_id", 1, true) then
		local rec = ngx.ctx.rec
		if rec then
			local it, err = ngx.re.gmatch(chunk, [["container_id"\s*:\s*"([A-Za-z0-9_-]{1,128})"]], "jo")
			if it then
				local ids = rec.containers or {}
				for mm in it do
					ids[#ids + 1] = mm[1]
				end
				rec.containers = ids
			end
		end
	end
end

-- The operations this bench relays, by method and path.
local OPERATIONS = {
	["POST /v1/chat/completions"] = "createChatCompletion",
	["POST /v1/responses"] = "createResponse",
	["GET /v1/containers"] = "ListContainers",
	["GET /v1/models"] = "listModels",
	["POST /v1/embeddings"] = "createEmbedding",
}

-- Any other /v1/ route (access_by_lua): the policy's routes, then
-- proxy_pass relays it as it came.
function _M.route()
	local method = req.get_method()
	local uri = ngx_var.uri
	local op = OPERATIONS[method .. " " .. uri] or "unknown"
	local rec = new_record(op)
	if not route_allowed(op) then
		return reply_error(rec, 403, POLICY, "route_denied", nil,
			str_format("%s (%s %s) is not allowed by this organization's policy", op, method, uri))
	end
	rec.bytes_in = tonumber(ngx_var.http_content_length) or 0
end

-- The audit line (log_by_lua): one JSON object per request, written through
-- a 64 KiB buffer that a timer flushes every second.
function _M.log()
	local rec = ngx.ctx.rec
	if rec == nil then
		-- Refused before any handler ran (413, a bad request line).
		rec = { type = "request", ts = timestamp(), request_id = ngx_var.request_id, client = ngx_var.remote_addr,
			method = req.get_method(), path = ngx_var.uri, decision = "error" }
	end
	local status = ngx.status
	rec.status = status
	if rec.upstream_status == nil then
		local us = ngx_var.upstream_status
		rec.upstream_status = us and tonumber(us) or null
	end
	if status >= 400 and rec.decision == "allow" then
		rec.decision = "error"
	end
	rec.latency_ms = floor((ngx_now() - req.start_time()) * 1e6 + 0.5) / 1000
	rec.bytes_out = tonumber(ngx_var.body_bytes_sent)
	audit_fh:write(json.encode(rec), "\n")
end

-- --- start-up ------------------------------------------------------------------

local function get(doc, path, default)
	local v = doc
	for key in path:gmatch("[^.]+") do
		if type(v) ~= "table" then
			return default
		end
		v = v[key]
	end
	if v == nil then
		return default
	end
	return v
end

-- Reads and compiles the policy file (the gateway's keys and defaults);
-- errors stop nginx from starting.
function _M.init(policy_path, audit)
	local f = assert(io_open(policy_path, "rb"))
	local doc = assert(cjson.decode(f:read("*a")))
	f:close()
	audit_path = audit

	P = {}
	P.mem_max = get(doc, "memory_limit.max", "1g")
	P.mem_max_rank = assert(MEMORY_RANK[P.mem_max], "memory_limit.max")
	P.mem_default = get(doc, "memory_limit.default", "1g")
	assert(MEMORY_RANK[P.mem_default], "memory_limit.default")
	P.clamp = get(doc, "memory_limit.on_exceed", "reject") == "clamp"
	P.exp_max = get(doc, "expires_after.max_minutes", 1440)
	local exp_default = get(doc, "expires_after.default_minutes", math.min(20, P.exp_max))
	P.exp_default = { anchor = "last_active_at", minutes = exp_default }

	local wild = get(doc, "network_policy.allow_wildcards", false)
	P.allow_wildcards = wild
	P.allow_secrets = get(doc, "network_policy.allow_domain_secrets", false)
	P.max_domains = get(doc, "network_policy.max_domains", 256)
	P.max_secrets = get(doc, "network_policy.max_domain_secrets", 64)
	local patterns, shown = {}, {}
	local any = false
	for i, d in ipairs(get(doc, "network_policy.allowed_domains", {})) do
		if d == "*" then
			any = true
		else
			local norm = assert(normalize(d, true), "network_policy.allowed_domains[" .. (i - 1) .. "]")
			patterns[#patterns + 1] = norm
			if #shown < 6 then
				shown[#shown + 1] = norm
			end
		end
	end
	P.domains = domain_set(patterns)
	P.domains.any = any
	P.domains_text = #patterns > 0 and ("allowed domains are " .. table.concat(shown, ", ") .. (#patterns > 6 and ", ..." or ""))
		or "no domains are allowed"
	P.np_default = get(doc, "network_policy.default", { type = "disabled" })
	if P.np_default.type == "allowlist" then
		for i, d in ipairs(P.np_default.allowed_domains) do
			P.np_default.allowed_domains[i] = assert(normalize(d, wild), "network_policy.default")
		end
	end

	P.skills = {}
	P.any_skill = false
	for _, id in ipairs(get(doc, "skills.allowed_skill_ids", {})) do
		if id == "*" then
			P.any_skill = true
		else
			P.skills[id] = true
		end
	end
	P.allow_inline = get(doc, "skills.allow_inline", false)
	P.max_inline = get(doc, "skills.max_inline_bytes", INLINE_MAX)
	P.max_skills = get(doc, "skills.max_count", 64)
	P.max_file_ids = get(doc, "file_ids.max_count", 100)
	P.block = get(doc, "on_upstream_violation", "block") ~= "log"
	P.allow_prompts = get(doc, "responses.allow_stored_prompts", false)

	-- routes: "allow"/"deny" by operationId; without "default" only the
	-- Containers operations are allowed, as in the gateway.
	P.routes = {}
	local routes = get(doc, "routes", {})
	local default = routes.default
	if default == nil then
		P.routes_default = false
		for _, op in ipairs({ "CreateContainer", "ListContainers", "RetrieveContainer", "DeleteContainer" }) do
			P.routes[op] = true
		end
	else
		P.routes_default = default == "allow"
	end
	for k, v in pairs(routes) do
		if k ~= "default" and k ~= "$comment" and k ~= "mode" then
			P.routes[k] = v == "allow"
		end
	end

	-- The adjustment texts, made once.
	P.adjust_memory = setmetatable({}, { __index = function(t, path)
		local s = str_format('%s set to this organization\'s default "%s"', at(path, "memory_limit"), P.mem_default)
		t[path] = s
		return s
	end })
	P.adjust_expiry = str_format("expires_after set to this organization's default of %d minutes", exp_default)
	P.adjust_network = setmetatable({}, { __index = function(t, path)
		local s = str_format("%s set to this organization's default (%s)", at(path, "network_policy"), P.np_default.type)
		t[path] = s
		return s
	end })
end

-- Each worker opens the audit file for appending, fully buffered.
function _M.init_worker()
	audit_fh = assert(io_open(audit_path, "a"))
	audit_fh:setvbuf("full", 65536)
	assert(ngx.timer.every(1, function()
		audit_fh:flush()
	end))
end

function _M.exit_worker()
	if audit_fh then
		audit_fh:flush()
		audit_fh:close()
		audit_fh = nil
	end
end

return _M
