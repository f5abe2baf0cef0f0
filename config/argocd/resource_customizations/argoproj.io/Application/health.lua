-- Argo CD health check for argoproj.io/Application, for app-of-apps: Argo CD 1.8 removed the
-- built-in health of Application resources, so a parent app's sync waves do not wait for a child
-- app (meshguard, wave -10) to be Healthy before syncing the next wave (the teams' apps with
-- their profiles) unless this check is installed. It reports the child's own health, as the
-- check in Argo CD's documentation does
-- (https://argo-cd.readthedocs.io/en/stable/operator-manual/health/#argocd-app), written with
-- locals only so that it runs without Lua's standard libraries.
local hs = {}
hs.status = "Progressing"
hs.message = "Waiting for the Application's health"
if obj.status ~= nil and obj.status.health ~= nil and obj.status.health.status ~= nil then
  hs.status = obj.status.health.status
  hs.message = obj.status.health.message or ""
end
return hs
