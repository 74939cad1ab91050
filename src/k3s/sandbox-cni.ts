import {join} from 'node:path'

import type {ServerConfigMap} from './server-config.js'

/** A CNI config for the kubelet of the server's own agent, and where k3s's containerd looks for it. */
export interface SandboxCniConfig {
  readonly path: string
  readonly content: string
}

/**
 * With `flannel-backend: none` k3s writes no CNI config, and a kubelet without one reports its runtime's
 * network not ready, so the server's own Node would never be Ready. hybrid's flannel stays off that Node
 * (the sandbox cannot run it), so its agent gets a config of its own with only the loopback plugin. That
 * makes the runtime report its network ready, and no more: containerd needs an `eth0` interface in a
 * CNI result to set up a pod's network, and loopback gives none, so a pod with a pod network cannot start
 * there; only hostNetwork pods run on the sandbox's Node. Nothing hybrid applies goes there needing a pod
 * network (test/unit/sandbox-pods.test.ts), and the Node is tainted. The name sorts after any real CNI's
 * config, which wins.
 */
/** Where the sandbox kubelet's loopback-only config goes under the data dir. */
export function sandboxCniPath(dataDir: string): string {
  return join(dataDir, 'agent', 'etc', 'cni', 'net.d', '90-hybrid-loopback.conflist')
}

export function sandboxCniConfig(
  dataDir: string,
  config: ServerConfigMap,
  agent: boolean,
): SandboxCniConfig | undefined {
  if (!agent || config['flannel-backend'] !== 'none') return undefined
  return {
    path: sandboxCniPath(dataDir),
    content: `${JSON.stringify({cniVersion: '1.0.0', name: 'hybrid-loopback', plugins: [{type: 'loopback'}]}, null, 2)}\n`,
  }
}
