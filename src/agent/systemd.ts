import {type AgentSpec, agentEnvFile} from './agent-config.js'
import {initService} from './init-service.js'
import {SERVICE_NAME, WORKER_PATHS} from './worker-paths.js'

/**
 * k3s-agent.service as k3s's installer writes it (same settings, same env files), running
 * `k3s agent` with no arguments: everything else is in /etc/rancher/k3s/config.yaml.
 *
 * Type=notify as k3s has it: k3s signals readiness with sd_notify. The k3s stand-in of hybrid's tests has
 * no sd_notify and is never run under systemd here (lab hosts have no init); the unit is for real k3s.
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
Type=notify
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

export const systemdService = initService(
  'systemd',
  {
    reload: systemctl('daemon-reload'),
    isEnabled: systemctl('is-enabled', '--quiet', SERVICE_NAME),
    enable: systemctl('enable', SERVICE_NAME),
    disable: systemctl('disable', SERVICE_NAME),
    // --no-block: with Type=notify a start waits for k3s's READY, which comes once the agent has joined;
    // hybrid waits for the Node to be Ready through the API instead, with its own timeout and progress.
    start: systemctl('start', '--no-block', SERVICE_NAME),
    restart: systemctl('restart', '--no-block', SERVICE_NAME),
    stop: systemctl('stop', SERVICE_NAME),
    isActive: systemctl('is-active', '--quiet', SERVICE_NAME),
    log: (lines) => ['journalctl', '--unit', SERVICE_NAME, '--lines', String(lines), '--no-pager', '--output', 'cat'],
  },
  (spec: AgentSpec) => [
    {path: WORKER_PATHS.systemdUnit, content: systemdUnit(), mode: 0o644},
    {path: WORKER_PATHS.systemdEnv, content: agentEnvFile(spec.environment), mode: 0o600},
  ],
  [WORKER_PATHS.systemdUnit, WORKER_PATHS.systemdEnv],
)
