-- tnoctl: From-header alignment for authenticated submission (installed by the tno_mail role).
--
-- Why: several communes share a mail host, and DKIM signs by the From: header domain. Postfix only
-- ties the *envelope* sender to the SASL login, so without this rule a user of commune A could put
-- `From: maire@<commune B>` in the header and get a signature of B. This prefilter rejects, with a
-- 5xx, every authenticated message whose From: header is not exactly one address in a domain of the
-- login's own tenant; the DKIM signing module therefore only ever signs the sender's own tenant.
--
-- Data: /etc/rspamd/tno/tenants.json, written by the role from the inventory:
--   {"logins": {"<login>": "<tenant slug>"}, "tenants": {"<slug>": ["<domain>", ...]}}
local rspamd_logger = require "rspamd_logger"
local ucl = require "ucl"

local DATA = "/etc/rspamd/tno/tenants.json"
local SYMBOL = "TNO_FROM_NOT_OWN_TENANT"

local function load_data(path)
  local parser = ucl.parser()
  local ok, err = parser:parse_file(path)
  if not ok then
    rspamd_logger.errx(rspamd_config, "tno: cannot read %s: %s", path, err)
    return nil
  end
  local obj = parser:get_object()
  local domains = {}
  for slug, list in pairs(obj.tenants or {}) do
    domains[slug] = {}
    for _, domain in ipairs(list) do
      domains[slug][string.lower(domain)] = true
    end
  end
  local logins = {}
  for login, slug in pairs(obj.logins or {}) do
    logins[string.lower(login)] = slug
  end
  return {logins = logins, domains = domains}
end

local data = load_data(DATA)

-- Why a message of `user` must be refused, or nil when its From: header belongs to the user's tenant.
local function refusal(task, user)
  if not data then
    return "sender policy unavailable on this host"
  end
  local slug = data.logins[string.lower(user)]
  if not slug then
    return "login " .. user .. " has no mailbox on this host"
  end
  local from = task:get_from("mime")
  if not from or #from ~= 1 or not from[1].domain or from[1].domain == "" then
    return "the From: header must hold exactly one address"
  end
  local domain = string.lower(from[1].domain)
  if not data.domains[slug] or not data.domains[slug][domain] then
    return "From: domain " .. domain .. " is not a domain of your commune"
  end
  return nil
end

rspamd_config:register_symbol({
  name = SYMBOL,
  type = "prefilter",
  priority = 10,
  flags = "empty,nostat",
  score = 0.0,
  group = "policies",
  description = "Authenticated sender used a From: domain outside its own tenant (rejected)",
  callback = function(task)
    local user = task:get_user()
    if not user then
      return false -- not an authenticated submission: inbound mail is scored, not aligned
    end
    local reason = refusal(task, user)
    if reason then
      task:insert_result(SYMBOL, 1.0, user)
      task:set_pre_result("reject", reason, "tno_from_alignment")
      return true
    end
    return false
  end,
})
