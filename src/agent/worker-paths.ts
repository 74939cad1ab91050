/**
 * Where the k3s agent lives on a worker. The paths are those of k3s's own installer (get.k3s.io), so a
 * worker joined by hybrid looks like one joined by the installer, and an admin finds everything where the
 * k3s documentation says. Anything hybrid adds of its own (the `none` supervisor and its log) goes under
 * /var/lib/rancher/hybrid: /var/lib/rancher is already k3s's, and /var/log may not be the worker's own
 * (a lab host shares it with the machine).
 */
export const WORKER_PATHS = {
  /** The installer's BIN_DIR. */
  binary: '/usr/local/bin/k3s',
  /** `k3s agent` reads this by default (no --config needed, so the command line stays bare). */
  configDir: '/etc/rancher/k3s',
  config: '/etc/rancher/k3s/config.yaml',
  /** k3s's private registry configuration (its `private-registry` default), from spec.registries. */
  registries: '/etc/rancher/k3s/registries.yaml',
  /** k3s imports every image archive here when its agent starts (spec.images.archives). */
  imagesDir: '/var/lib/rancher/k3s/agent/images',
  /** The token as a file (config's token-file), not K3S_TOKEN in an env file: it never enters an environment. */
  token: '/etc/rancher/k3s/token',
  /**
   * The node password k3s's agent sends with its name (the server keeps its hash in
   * kube-system/<node>.node-password.k3s); hybrid writes it before the agent first starts (agent/node-password.ts).
   */
  nodePassword: '/etc/rancher/node/password',
  /** k3s's default data dir for a root agent. */
  dataDir: '/var/lib/rancher/k3s',
  /** k3s's run dir: containerd's sockets and the containers' root filesystems (mounts). */
  runDir: '/run/k3s',
  /** The installer's unit and its env file (`${FILE_K3S_SERVICE}.env`). */
  systemdUnit: '/etc/systemd/system/k3s-agent.service',
  systemdEnv: '/etc/systemd/system/k3s-agent.service.env',
  /** The installer's OpenRC script and its env file; the `none` supervisor reads the same env file. */
  openrcScript: '/etc/init.d/k3s-agent',
  agentEnv: '/etc/rancher/k3s/k3s-agent.env',
  /** The OpenRC script's log, as the installer writes it. */
  openrcLog: '/var/log/k3s-agent.log',
  /** hybrid's own directory: the `none` supervisor script and its log. */
  hybridDir: '/var/lib/rancher/hybrid',
  supervisor: '/var/lib/rancher/hybrid/k3s-agent-supervisor',
  supervisorLog: '/var/lib/rancher/hybrid/k3s-agent.log',
  /** OpenRC's supervise-daemon uses /var/run/k3s-agent.pid (/var/run is /run); `none` uses the same. */
  pidFile: '/run/k3s-agent.pid',
} as const

/** The name of the service under every init system. */
export const SERVICE_NAME = 'k3s-agent'
