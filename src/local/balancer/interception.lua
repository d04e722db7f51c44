-- The load balancer's answers for closed things, from the shared state in Redis.
--
-- Run in nginx's access phase (`access_by_lua_block { require("seckill_balancer").intercept() }`). The app
-- describes what may be answered here (`settings.interceptions`, generated from the app's `Interception`s): a
-- POST path with the id in it, the key whose value closes it, and the app's own bytes to answer. A request that
-- matches one, while the key holds one of its closing values, is answered here and never reaches an app
-- instance.
--
-- Everything else, and every doubt, passes through untouched: any other value or no key, a request the app would
-- refuse before looking at the state (a missing or malformed cookie, a body over its limit or sent in chunks, a
-- request from another site's page where the app refuses those, a path it would not parse the same way), Redis
-- unreachable or slow, or an error in this code.
--
-- Lookups are cached in a shared dict for `cache_seconds` (negative answers too), so Redis sees one lookup per key
-- per period, whatever the traffic. While one request looks a key up, the others for that key wait for its
-- answer (a millisecond or so; never an answer of unknown age, which could let requests through long after the
-- key was set). Every Redis step is bounded by `timeout_ms`; after a failure Redis is skipped for
-- `backoff_seconds`, so an outage costs one bounded wait per back-off, not one per request.
--
-- The settings (Redis, the bounds, the interceptions with their exact answers) come from
-- `seckill_balancer_settings`, generated next to this file (src/local/balancer/nginx_config.rs).

local settings = require("seckill_balancer_settings")
local redis = require(settings.redis_module)

local _M = {}

local cache = ngx.shared.seckill_closed_state

local CLOSED = "closed"
local OPEN = "open"
local REDIS_DOWN = "redis down"

-- The value Redis holds for `key`: a string, false for no key, or nil and an error.
local function lookup(key)
    local client = redis:new()
    client:set_timeout(settings.timeout_ms)
    local ok, err
    if settings.redis_socket then
        ok, err = client:connect("unix:" .. settings.redis_socket)
    else
        ok, err = client:connect(settings.redis_host, settings.redis_port)
    end
    if not ok then
        return nil, "connect: " .. tostring(err)
    end
    -- A connection from the pool is already signed in and on its database.
    if client:get_reused_times() == 0 then
        if settings.redis_password then
            local res
            if settings.redis_username then
                res, err = client:auth(settings.redis_username, settings.redis_password)
            else
                res, err = client:auth(settings.redis_password)
            end
            if not res then
                client:close()
                return nil, "auth: " .. tostring(err)
            end
        end
        if settings.redis_db ~= 0 then
            local res
            res, err = client:select(settings.redis_db)
            if not res then
                client:close()
                return nil, "select: " .. tostring(err)
            end
        end
    end
    local value
    value, err = client:get(key)
    if err then
        client:close()
        return nil, "get: " .. tostring(err)
    end
    client:set_keepalive(settings.pool_idle_ms, settings.pool_size)
    if value == ngx.null then
        return false
    end
    return value
end

-- The cached state of `key` (CLOSED or OPEN), or nil when it has expired or was never looked up.
local function cached(key)
    return cache:get(key)
end

-- Waits for the lookup another request is making of `key`: its answer, or nil when it failed or took longer
-- than a lookup may.
local function wait_for_lookup(key, lock)
    local deadline = ngx.now() + settings.lookup_lock_seconds
    repeat
        ngx.sleep(0.001)
        local known = cached(key)
        if known then
            return known
        end
    until not cache:get(lock) or cache:get(REDIS_DOWN) or ngx.now() >= deadline
    return cached(key)
end

-- Whether the state under `key` is one of `closing` (a set of values); false means "ask the app".
local function closed(key, closing)
    local known = cached(key)
    if known then
        return known == CLOSED
    end
    -- Fail open: with Redis down, the app (and its database) answers.
    if cache:get(REDIS_DOWN) then
        return false
    end
    -- One lookup per key at a time; the others wait for its answer (a millisecond, at most a lookup's bound)
    -- rather than go by an answer of unknown age.
    local lock = "lookup " .. key
    if not cache:add(lock, true, settings.lookup_lock_seconds) then
        return wait_for_lookup(key, lock) == CLOSED
    end
    local value, err = lookup(key)
    if value == nil then
        cache:set(REDIS_DOWN, true, settings.backoff_seconds)
        cache:delete(lock)
        ngx.log(ngx.WARN, "seckill balancer: Redis failed (", err, "); passing requests through for ",
            settings.backoff_seconds, " s")
        return false
    end
    local state = (value and closing[value]) and CLOSED or OPEN
    cache:set(key, state, settings.cache_seconds)
    cache:delete(lock)
    return state == CLOSED
end

-- The request's Cookie headers, or nil when one of them is not text the app can read (it would answer 400).
local function cookie_headers()
    local headers, err = ngx.req.get_headers(200)
    if err == "truncated" then
        return nil
    end
    local value = headers["cookie"]
    if value == nil then
        return {}
    end
    if type(value) == "string" then
        value = { value }
    end
    for _, header in ipairs(value) do
        if header:find("[^\t\32-\126]") then
            return nil
        end
    end
    return value
end

-- Every value of cookie `name`, in order, read as the app reads them (pairs split on ';', trimmed, the name up to
-- the first '=', the value trimmed of white space and then of double quotes); nil when the app could not read
-- the Cookie headers at all.
local function cookie_values(name)
    local headers = cookie_headers()
    if headers == nil then
        return nil
    end
    local values = {}
    for _, header in ipairs(headers) do
        for pair in (header .. ";"):gmatch("([^;]*);") do
            local trimmed = pair:match("^%s*(.-)%s*$")
            local key, value = trimmed:match("^([^=]*)=(.*)$")
            if key == name then
                value = value:match("^%s*(.-)%s*$")
                value = value:gsub('^"+', "")
                value = value:gsub('"+$', "")
                values[#values + 1] = value
            end
        end
    end
    return values
end

-- A declared body the app would refuse (an unreadable or too large Content-Length) goes to the app, and so
-- does a body sent in chunks: it declares no length, and only reading it (the app does, bounded) tells whether
-- the app accepts it.
local function body_accepted()
    if ngx.var.http_transfer_encoding ~= nil then
        return false
    end
    local length = ngx.var.http_content_length
    if length == nil then
        return true
    end
    return length:match("^%d+$") ~= nil and #length <= 18 and tonumber(length) <= settings.max_body
end

-- An id the app reads as this very number and writes back the same: digits, no leading zero, well within i64.
local function canonical_id(segment)
    return segment ~= nil and segment:match("^[1-9]%d*$") ~= nil and #segment <= 18
end

local function path()
    return (ngx.var.request_uri or ""):match("^[^?]*")
end

-- Whether a browser labelled the request as coming from another site's page.
local function cross_site()
    local fetch_site = ngx.req.get_headers(200)["sec-fetch-site"]
    if type(fetch_site) == "table" then
        for _, site in ipairs(fetch_site) do
            if site == "cross-site" then
                return true
            end
        end
        return false
    end
    return fetch_site == "cross-site"
end

-- Whether the request carries the rule's cookie in a shape the app accepts: its last value, or any of them.
local function cookie_accepted(rule)
    local values = cookie_values(rule.cookie)
    if values == nil then
        return false
    end
    if rule.cookie_last_only then
        local last = values[#values]
        return last ~= nil and last:match(rule.cookie_pattern) ~= nil
    end
    for _, value in ipairs(values) do
        if value:match(rule.cookie_pattern) then
            return true
        end
    end
    return false
end

-- The answer for a request that matched `rule`'s path with `id` (and `token`), or nil.
local function rule_answer(rule, id, token)
    if not canonical_id(id) then
        return nil
    end
    if rule.token_pattern and (token == nil or #token > rule.token_max or not token:match(rule.token_pattern)) then
        return nil
    end
    if rule.refuses_cross_site and cross_site() then
        return nil
    end
    if rule.cookie and not cookie_accepted(rule) then
        return nil
    end
    if not closed(rule.key_prefix .. id .. ":state", rule.closing) then
        return nil
    end
    if rule.answer_after_id then
        return rule.answer_before_id .. id .. rule.answer_after_id, rule.content_type
    end
    return rule.answer_before_id, rule.content_type
end

-- The body (and its content type) to answer this request with, or nil to pass it through.
local function answer_for_request()
    if ngx.req.get_method() ~= "POST" or not body_accepted() then
        return nil
    end
    local request_path = path()
    for _, rule in ipairs(settings.interceptions) do
        local id, token = request_path:match(rule.path)
        if id then
            return rule_answer(rule, id, token)
        end
    end
    return nil
end

function _M.intercept()
    local ok, body, content_type = pcall(answer_for_request)
    if not ok then
        -- A bug here must never refuse a request: the app answers it.
        ngx.log(ngx.ERR, "seckill balancer: ", tostring(body), "; passing the request through")
        return
    end
    if body == nil then
        return
    end
    ngx.status = ngx.HTTP_OK
    ngx.header["Content-Type"] = content_type
    ngx.header["Content-Length"] = #body
    ngx.print(body)
    return ngx.exit(ngx.HTTP_OK)
end

return _M
