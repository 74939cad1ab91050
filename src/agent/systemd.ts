import {type AgentSpec, agentEnvFile} from './agent-config.js'
import {initService} from './init-service.js'
import {SERVICE_NAME, WORKER_PATHS} from './worker-paths.js'

/**
 * k3s-agent.service as k3s's installer writes it (same settings, same env files), running
 * `k3s agent` with no arguments: everything else is in /etc/rancher/k3s/config.yaml.
 *
 * Type=exec, as k3s's installer writes it for agents (notify only for servers): an agent sends READY=1 only
 * once it has joined, so under notify a unit whose agent is still in bootstrap (a token whose CA hash no
 * longer matches, a server away) would sit in "activating", which systemctl's start, is-active and stop
 * read as not started. Under exec the unit is active once k3s runs. Tests run it under systemd as PID 1
 * on the lab's systemd hosts, with the k3s stand-in (which notifies once joined, as k3s does).
 */
export function systemdUnit(): string {
  return `# Written by hybrid, after k3s's own k3s-agent.service.
[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=exec
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-${WORKER_PATHS.systemdEnv}
KillMode=process
Delegate=yes
User=root
# Having non-zero Limit*s causes performance problems due to accounting overhead
# in the kernel. We recommend using cgroups to do container-local accounting.
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=${WORKER_PATHS.binary} agent
`
}

const systemctl = (...args: string[]) => ['systemctl', ...args]

/**
 * Exit 0 when the unit's ActiveState says k3s runs or is being started: active, reloading, or activating
 * (its ExecStartPre, or a restart after it ended that systemd will make by itself, which a stop must
 * cancel). `is-active` prints that state but exits non-zero for activating, so its word is read, not its
 * exit code. $1: the unit.
 */
const IS_RUNNING = 'case "$(systemctl is-active "$1")" in active | activating | reloading) exit 0 ;; *) exit 3 ;; esac'

export const systemdService = initService(
  'systemd',
  {
    reload: systemctl('daemon-reload'),
    isEnabled: systemctl('is-enabled', '--quiet', SERVICE_NAME),
    enable: systemctl('enable', SERVICE_NAME),
    disable: systemctl('disable', SERVICE_NAME),
    // Under Type=exec these return once systemd has executed k3s (a binary that cannot run fails here,
    // with systemd's words); hybrid then waits for the Node to be Ready through the API.
    start: systemctl('start', SERVICE_NAME),
    restart: systemctl('restart', SERVICE_NAME),
    stop: systemctl('stop', SERVICE_NAME),
    isActive: ['sh', '-c', IS_RUNNING, 'sh', SERVICE_NAME],
    log: (lines) => ['journalctl', '--unit', SERVICE_NAME, '--lines', String(lines), '--no-pager', '--output', 'cat'],
  },
  (spec: AgentSpec) => [
    {path: WORKER_PATHS.systemdUnit, content: systemdUnit(), mode: 0o644},
    {path: WORKER_PATHS.systemdEnv, content: agentEnvFile(spec.environment), mode: 0o600},
  ],
  [WORKER_PATHS.systemdUnit, WORKER_PATHS.systemdEnv],
)
