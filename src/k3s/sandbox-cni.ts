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
 * (the sandbox cannot run it), so its agent gets a config of its own with only the loopback plugin: the
 * runtime's network is ready, and a pod there (the Node is tainted; only a pod that tolerates it lands
 * there) gets a loopback device and no more. The name sorts after any real CNI's config, which wins.
 */
export function sandboxCniConfig(
  dataDir: string,
  config: ServerConfigMap,
  agent: boolean,
): SandboxCniConfig | undefined {
  if (!agent || config['flannel-backend'] !== 'none') return undefined
  return {
    path: join(dataDir, 'agent', 'etc', 'cni', 'net.d', '90-hybrid-loopback.conflist'),
    content: `${JSON.stringify({cniVersion: '1.0.0', name: 'hybrid-loopback', plugins: [{type: 'loopback'}]}, null, 2)}\n`,
  }
}
