/**
 * The flag names `k3s agent` takes, which are also the keys of its config.yaml: the list of
 * NewAgentCommand in k3s's pkg/cli/cmds/agent.go (k3s-io/k3s, read at commit 00cc29ba2779), with the
 * global flags it includes (ConfigFlag, DebugFlag, VLevel, VModule, LogFile, AlsoLogToStderr,
 * PreferBundledBin) and without the one-letter aliases. `spec.agent` and `workers[].agent` may set any of
 * them except those in HYBRID_AGENT_KEYS.
 */
export const K3S_AGENT_FLAGS: ReadonlySet<string> = new Set([
  'config',
  'debug',
  'v',
  'vmodule',
  'log',
  'alsologtostderr',
  'token',
  'token-file',
  'server',
  'data-dir',
  'node-name',
  'with-node-id',
  'node-label',
  'node-taint',
  'image-credential-provider-bin-dir',
  'image-credential-provider-config',
  'selinux',
  'lb-server-port',
  'protect-kernel-defaults',
  'container-runtime-endpoint',
  'pause-image',
  'snapshotter',
  'private-registry',
  'airgap-extra-registry',
  'node-ip',
  'node-external-ip',
  'resolv-conf',
  'flannel-iface',
  'flannel-conf',
  'flannel-cni-conf',
  'kubelet-arg',
  'kube-proxy-arg',
  'rootless',
  'prefer-bundled-bin',
  'disable-selinux',
  'docker',
  'no-flannel',
  'cluster-secret',
  'vpn-auth',
  'vpn-auth-file',
])

/** Flags whose value is a list (urfave StringSlice): a single value in the inventory is taken as a list of one. */
export const K3S_AGENT_LIST_FLAGS: ReadonlySet<string> = new Set([
  'node-label',
  'node-taint',
  'airgap-extra-registry',
  'node-ip',
  'node-external-ip',
  'kubelet-arg',
  'kube-proxy-arg',
])

/**
 * Keys hybrid writes itself (src/agent/agent-config.ts) or that would take the agent away from what hybrid
 * manages, each with where to set it instead. Refused in the inventory.
 */
export const HYBRID_AGENT_KEYS: Readonly<Record<string, string>> = {
  config: 'hybrid writes /etc/rancher/k3s/config.yaml, which the agent reads by default',
  server: 'hybrid sets the server (the advertised address, controlPlane.advertiseAddress and apiPort)',
  token: "hybrid gives the agent the cluster's agent token through token-file",
  'token-file': "hybrid gives the agent the cluster's agent token through its own token file",
  'cluster-secret': "hybrid gives the agent the cluster's agent token through token-file",
  'data-dir': 'hybrid keeps the agent in k3s\u2019s default data dir, which uninstall removes',
  'node-name': "the Node's name is the worker's name",
  'with-node-id': "hybrid finds a worker's Node by the worker's name, which a node id would change",
  'node-ip': "set the worker's internalAddress instead",
  'node-external-ip': "set the worker's externalAddress instead",
  'private-registry': 'hybrid writes spec.registries to k3s\u2019s default registries.yaml',
}
