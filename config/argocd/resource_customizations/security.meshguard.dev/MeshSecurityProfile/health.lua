-- Argo CD health check for security.meshguard.dev/MeshSecurityProfile.
--
-- Runs in Argo CD's strictest setting: a script installed through argocd-cm gets no Lua standard
-- library (no string.*, math.*, os.*) unless resource.customizations.useOpenLibs is set. It uses
-- only `obj`, the base functions ipairs and tonumber, `#` and `..` (config/argocd/health_test.go
-- runs it with the base library alone and checks that it reads no other global).
--
-- It reads the profile as kstatus does (Flux, kubectl plugins), so both agree:
--   observedGeneration differs from generation   -> Progressing  (kstatus InProgress)
--   Stalled=True                                 -> Degraded     (kstatus Failed)
--   Reconciling=True                             -> Progressing  (kstatus InProgress)
--   Ready=True                                   -> Healthy      (kstatus Current)
--   Ready=False                                  -> Degraded     (kstatus InProgress: it cannot
--                                                   tell progress from failure; meshguard can,
--                                                   because it sets Reconciling while it converges)
--   Ready=False, reason AuditOnly                -> Healthy      (Audit mode does what it declares;
--                                                   the message says it is not enforced)
--   no status yet, no Ready, Ready=Unknown       -> Progressing
local hs = {}

local function findCondition(conditions, conditionType)
  for _, c in ipairs(conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

-- "Reason: message", leaving out an empty part.
local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason == "" then
    return message
  end
  if message == "" then
    return reason
  end
  return reason .. ": " .. message
end

local status = obj.status
if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for meshguard"
  return hs
end

-- As kstatus: compare only when both are set. tonumber also accepts a number given as a string.
local generation = nil
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = tonumber(obj.metadata.generation)
end
local observed = nil
if status.observedGeneration ~= nil then
  observed = tonumber(status.observedGeneration)
end
if generation ~= nil and observed ~= nil and observed ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for meshguard to observe generation " .. obj.metadata.generation
  return hs
end

local conditions = status.conditions
local ready = findCondition(conditions, "Ready")

-- The profile cannot progress without a change in Git (ProfileConflict, InvalidSpec,
-- UnsupportedByMesh).
local stalled = findCondition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

-- meshguard still converges on its own (CRDs not installed yet, an apply to retry). Checked
-- before Ready, as kstatus does; meshguard never sets it together with Ready=True.
local reconciling = findCondition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  if ready ~= nil and ready.status == "False" then
    hs.message = describe(ready)
  else
    hs.message = describe(reconciling)
  end
  return hs
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for meshguard to report Ready"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  -- An expiring mesh CA certificate keeps Ready True (so sync waves are not blocked), but it
  -- must show in the UI.
  local certificates = findCondition(conditions, "CertificatesHealthy")
  if certificates ~= nil and certificates.status ~= "True" and certificates.reason == "ExpiringSoon" then
    if hs.message == "" then
      hs.message = describe(certificates)
    else
      hs.message = hs.message .. "; " .. describe(certificates)
    end
  end
  return hs
end

if ready.status == "False" then
  -- AuditOnly: enforcement is Audit and some generated objects are missing or differ. That is
  -- what the profile declares ("look, write nothing"), not a failure, so it is Healthy with a
  -- message that says the namespace is not enforced. Argo CD fails a sync whose wave holds a
  -- Degraded resource (gitops-engine sync_context: Degraded -> OperationFailed) and waits on a
  -- Progressing one, so Degraded (or Progressing) here would stop every team's sync for the whole
  -- Audit-first rollout (docs/user-guide.md). The alerts still report it:
  -- MeshSecurityObjectsDrifted fires after 10 minutes and meshguard_profile_ready stays 0.
  if ready.reason == "AuditOnly" then
    hs.status = "Healthy"
    hs.message = "Audit mode, not enforced: " .. describe(ready)
    local inSync = findCondition(conditions, "InSync")
    if inSync ~= nil and inSync.status == "False" and inSync.message ~= nil and inSync.message ~= "" then
      hs.message = hs.message .. "; " .. inSync.message
    end
    return hs
  end
  -- Conflict, ApplyFailed (given up), Drifted (another controller keeps rewriting an object),
  -- Weakened, Expired or another blocking certificate state, RestartRequired, an expectation not
  -- met: the namespace is not protected as declared, in Enforce and in Audit mode alike.
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end

-- Ready=Unknown: meshguard has not decided yet.
hs.status = "Progressing"
hs.message = describe(ready)
return hs
