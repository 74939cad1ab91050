import {type AgentSpec, agentEnvFile} from './agent-config.js'
import {initService} from './init-service.js'
import {SERVICE_NAME, WORKER_PATHS} from './worker-paths.js'

/**
 * /etc/init.d/k3s-agent as k3s's installer writes it: supervise-daemon respawns `k3s agent` (no
 * arguments: everything else is in config.yaml), the environment from its env file.
 */
export function openrcScript(): string {
  return `#!/sbin/openrc-run
# Written by hybrid, after k3s's own OpenRC script.

depend() {
    after network-online
    want cgroups
}

start_pre() {
    rm -f /tmp/k3s.*
}

supervisor=supervise-daemon
name=${SERVICE_NAME}
command="${WORKER_PATHS.binary}"
command_args="agent >>${WORKER_PATHS.openrcLog} 2>&1"

output_log=${WORKER_PATHS.openrcLog}
error_log=${WORKER_PATHS.openrcLog}

pidfile="${WORKER_PATHS.pidFile}"
respawn_delay=5
respawn_max=0

set -o allexport
if [ -f /etc/environment ]; then . /etc/environment; fi
if [ -f ${WORKER_PATHS.agentEnv} ]; then . ${WORKER_PATHS.agentEnv}; fi
set +o allexport
`
}

const rcService = (action: string) => ['rc-service', SERVICE_NAME, action]

export const openrcService = initService(
  'openrc',
  {
    isEnabled: ['test', '-e', `/etc/runlevels/default/${SERVICE_NAME}`],
    enable: ['rc-update', 'add', SERVICE_NAME, 'default'],
    disable: ['rc-update', 'del', SERVICE_NAME, 'default'],
    start: rcService('start'),
    restart: rcService('restart'),
    stop: rcService('stop'),
    isActive: rcService('status'),
    log: (lines) => ['tail', '-n', String(lines), WORKER_PATHS.openrcLog],
  },
  (spec: AgentSpec) => [
    {path: WORKER_PATHS.openrcScript, content: openrcScript(), mode: 0o755},
    {path: WORKER_PATHS.agentEnv, content: agentEnvFile(spec.environment), mode: 0o600},
  ],
  [WORKER_PATHS.openrcScript, WORKER_PATHS.agentEnv, WORKER_PATHS.openrcLog],
)
