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
  -- Conflict, ApplyFailed (given up), Drifted (another controller keeps rewriting an object),
  -- Weakened, Expired or another blocking certificate state, RestartRequired, AuditOnly.
  --
  -- AuditOnly (enforcement: Audit, and some generated objects are missing or differ) is
  -- Degraded on purpose, not Suspended. Argo CD defines Suspended as "suspended and waiting for
  -- some external event to resume (e.g. suspended CronJob or paused Deployment)": an Audit
  -- profile waits for nothing, it reports that the namespace is not protected as declared.
  -- Suspended also ranks healthier than Progressing when Argo CD sums up an Application, which
  -- would paint an unprotected namespace almost green. An Audit profile whose objects all exist
  -- as declared is Ready and so Healthy: the mode alone never degrades it. To keep Audit
  -- profiles out of an Application's health, annotate them
  -- argocd.argoproj.io/ignore-healthcheck: "true".
  hs.status = "Degraded"
  hs.message = describe(ready)
  if ready.reason == "AuditOnly" then
    local inSync = findCondition(conditions, "InSync")
    if inSync ~= nil and inSync.status == "False" and inSync.message ~= nil and inSync.message ~= "" then
      hs.message = hs.message .. "; " .. inSync.message
    end
  end
  return hs
end

-- Ready=Unknown: meshguard has not decided yet.
hs.status = "Progressing"
hs.message = describe(ready)
return hs
