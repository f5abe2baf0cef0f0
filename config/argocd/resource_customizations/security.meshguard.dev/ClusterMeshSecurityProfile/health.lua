-- Argo CD health check for security.meshguard.dev/ClusterMeshSecurityProfile (a floor).
--
-- Like the MeshSecurityProfile check beside it, it runs without Lua's standard libraries (only
-- `obj`, ipairs, tonumber, tostring, `#` and `..`; config/argocd/health_test.go checks the globals
-- it reads) and reads the conditions as kstatus does:
--   observedGeneration differs from generation   -> Progressing
--   Stalled=True (ClusterProfileConflict)        -> Degraded
--   Reconciling=True (the floor is being applied) -> Progressing
--   Ready=True (every selected namespace at the floor) -> Healthy
--   Ready=False (NamespacesNotReady)             -> Degraded: some selected namespaces are not
--                                                   protected at the floor (or are weakened)
--   no status yet, no Ready, Ready=Unknown       -> Progressing
-- The message adds status.readyNamespaces of status.matchedNamespaces.
local hs = {}

local function findCondition(conditions, conditionType)
  for _, c in ipairs(conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

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
  hs.message = "Waiting for meshguard to observe generation " .. tostring(obj.metadata.generation)
  return hs
end

-- "3 of 4 namespaces Ready", when the counts are there.
local counts = ""
if status.matchedNamespaces ~= nil and status.readyNamespaces ~= nil then
  counts = tostring(status.readyNamespaces) .. " of " .. tostring(status.matchedNamespaces) .. " namespaces Ready"
end
local function withCounts(text)
  if counts == "" then
    return text
  end
  if text == "" then
    return counts
  end
  return counts .. "; " .. text
end

local conditions = status.conditions
local stalled = findCondition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = withCounts(describe(stalled))
  return hs
end

local ready = findCondition(conditions, "Ready")
local reconciling = findCondition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = withCounts(describe(reconciling))
  return hs
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for meshguard to report Ready"
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = withCounts(describe(ready))
return hs
