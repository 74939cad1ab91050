import type {
  KubernetesObject,
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1DaemonSet,
  V1ServiceAccount,
} from '@kubernetes/client-node'

import type {NetworkSettings} from '../inventory/model.js'
import type {ServerConfigMap} from '../k3s/server-config.js'
import {SANDBOX_LABEL} from '../sandbox/workarounds/taint.js'
import type {ServerConfigFragment} from '../sandbox/workarounds/workaround.js'

/**
 * The workers' CNI when the control plane runs k3s with `flannel-backend: none`: flannel as a DaemonSet
 * applied through the API, as flannel's own kube-flannel.yml has it (ServiceAccount, ClusterRole and its
 * binding, the ConfigMap with net-conf.json and cni-conf.json, the DaemonSet with its two install-cni init
 * containers), in kube-system, with k3s's CNI directories, kept off the sandbox's own Node.
 */

/** Pinned: the images a user can pre-pull or mirror, and what a second `up` compares against. */
export const FLANNEL_IMAGE = 'ghcr.io/flannel-io/flannel:v0.28.1'
export const FLANNEL_CNI_PLUGIN_IMAGE = 'ghcr.io/flannel-io/flannel-cni-plugin:v1.9.0-flannel1'
/** The registry the pinned images come from, which spec.images.flannelRegistry replaces. */
export const FLANNEL_REGISTRY = 'ghcr.io'

/** A pinned flannel image from `registry` (a mirror of ghcr.io's flannel-io repositories) instead of ghcr.io. */
export function flannelImage(image: string, registry: string = FLANNEL_REGISTRY): string {
  return `${registry.replace(/\/+$/, '')}${image.slice(FLANNEL_REGISTRY.length)}`
}

/** k3s's default `--cluster-cidr`. */
export const K3S_CLUSTER_CIDR = '10.42.0.0/16'

/**
 * Where k3s's containerd looks for CNI configuration and plugins (not upstream's /etc/cni/net.d and
 * /opt/cni/bin): the agent's conf dir, and the stable plugin dir k3s keeps its bundled plugins in.
 */
export const K3S_CNI_CONF_DIR = '/var/lib/rancher/k3s/agent/etc/cni/net.d'
export const K3S_CNI_BIN_DIR = '/var/lib/rancher/k3s/data/cni'

export interface FlannelOptions {
  /** The cluster's pod CIDR: one IPv4 range, or an IPv4 and an IPv6 range separated by a comma (dual stack). */
  readonly clusterCidr: string
  readonly namespace?: string
  readonly cniConfDir?: string
  readonly cniBinDir?: string
  /** spec.images.flannelRegistry: where the images come from (default ghcr.io). */
  readonly registry?: string
}

const NAME = 'flannel'
const CONFIG_MAP = 'kube-flannel-cfg'
const DAEMON_SET = 'kube-flannel-ds'
const LABELS = {'k8s-app': 'flannel', app: 'flannel', tier: 'node'}
const [SANDBOX_KEY, SANDBOX_VALUE] = SANDBOX_LABEL.split('=')

/** The objects, in the order they are applied (what the DaemonSet uses comes first). */
export function flannelManifests(options: FlannelOptions): KubernetesObject[] {
  const namespace = options.namespace ?? 'kube-system'
  const serviceAccount: V1ServiceAccount = {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {name: NAME, namespace, labels: {'k8s-app': 'flannel'}},
  }
  const clusterRole: V1ClusterRole = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: {name: NAME, labels: {'k8s-app': 'flannel'}},
    rules: [
      {apiGroups: [''], resources: ['pods'], verbs: ['get']},
      {apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch']},
      {apiGroups: [''], resources: ['nodes/status'], verbs: ['patch']},
    ],
  }
  const binding: V1ClusterRoleBinding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: {name: NAME, labels: {'k8s-app': 'flannel'}},
    roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NAME},
    subjects: [{kind: 'ServiceAccount', name: NAME, namespace}],
  }
  const configMap: V1ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {name: CONFIG_MAP, namespace, labels: LABELS},
    data: {'cni-conf.json': cniConf(), 'net-conf.json': netConf(options.clusterCidr)},
  }
  return [serviceAccount, clusterRole, binding, configMap, daemonSet(namespace, options)]
}

/** flannel's net-conf.json: the cluster's pod network (both families when dual stack), vxlan. */
export function netConf(clusterCidr: string): string {
  const ranges = clusterCidr.split(',').map((r) => r.trim())
  const v4 = ranges.find((r) => !r.includes(':'))
  const v6 = ranges.find((r) => r.includes(':'))
  const conf: Record<string, unknown> = {
    ...(v4 ? {Network: v4} : {EnableIPv4: false}),
    ...(v6 ? {EnableIPv6: true, IPv6Network: v6} : {}),
    EnableNFTables: false,
    Backend: {Type: 'vxlan'},
  }
  return `${JSON.stringify(conf, null, 2)}\n`
}

function cniConf(): string {
  const conf = {
    name: 'cbr0',
    cniVersion: '0.3.1',
    plugins: [
      {type: 'flannel', delegate: {hairpinMode: true, isDefaultGateway: true}},
      {type: 'portmap', capabilities: {portMappings: true}},
    ],
  }
  return `${JSON.stringify(conf, null, 2)}\n`
}

function daemonSet(namespace: string, options: FlannelOptions): V1DaemonSet {
  const confDir = options.cniConfDir ?? K3S_CNI_CONF_DIR
  const binDir = options.cniBinDir ?? K3S_CNI_BIN_DIR
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: {name: DAEMON_SET, namespace, labels: LABELS},
    spec: {
      selector: {matchLabels: {app: 'flannel', 'k8s-app': 'flannel'}},
      template: {
        metadata: {labels: LABELS},
        spec: {
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [
                  {
                    matchExpressions: [
                      {key: 'kubernetes.io/os', operator: 'In', values: ['linux']},
                      // The sandbox cannot run flannel (no promiscuous bridge, no vxlan): never there.
                      {key: SANDBOX_KEY, operator: 'NotIn', values: [SANDBOX_VALUE]},
                    ],
                  },
                ],
              },
            },
          },
          hostNetwork: true,
          priorityClassName: 'system-node-critical',
          serviceAccountName: NAME,
          tolerations: [{operator: 'Exists', effect: 'NoSchedule'}],
          initContainers: [
            {
              // k3s keeps links into its versioned data dir here; their targets lie outside this container,
              // so `cp -f` replaces the `flannel` link with upstream's plugin and never writes through it.
              name: 'install-cni-plugin',
              image: flannelImage(FLANNEL_CNI_PLUGIN_IMAGE, options.registry),
              command: ['cp'],
              args: ['-f', '/flannel', '/opt/cni/bin/flannel'],
              volumeMounts: [{name: 'cni-plugin', mountPath: '/opt/cni/bin'}],
            },
            {
              name: 'install-cni',
              image: flannelImage(FLANNEL_IMAGE, options.registry),
              command: ['cp'],
              args: ['-f', '/etc/kube-flannel/cni-conf.json', '/etc/cni/net.d/10-flannel.conflist'],
              volumeMounts: [
                {name: 'cni', mountPath: '/etc/cni/net.d'},
                {name: 'flannel-cfg', mountPath: '/etc/kube-flannel/'},
              ],
            },
          ],
          containers: [
            {
              name: 'kube-flannel',
              image: flannelImage(FLANNEL_IMAGE, options.registry),
              command: ['/opt/bin/flanneld'],
              args: ['--ip-masq', '--kube-subnet-mgr'],
              resources: {requests: {cpu: '100m', memory: '50Mi'}},
              securityContext: {privileged: false, capabilities: {add: ['NET_ADMIN', 'NET_RAW']}},
              env: [
                {name: 'POD_NAME', valueFrom: {fieldRef: {fieldPath: 'metadata.name'}}},
                {name: 'POD_NAMESPACE', valueFrom: {fieldRef: {fieldPath: 'metadata.namespace'}}},
                {name: 'EVENT_QUEUE_DEPTH', value: '5000'},
                {name: 'CONT_WHEN_CACHE_NOT_READY', value: 'false'},
              ],
              volumeMounts: [
                {name: 'run', mountPath: '/run/flannel'},
                {name: 'flannel-cfg', mountPath: '/etc/kube-flannel/'},
                {name: 'xtables-lock', mountPath: '/run/xtables.lock'},
              ],
            },
          ],
          volumes: [
            {name: 'run', hostPath: {path: '/run/flannel'}},
            {name: 'cni-plugin', hostPath: {path: binDir}},
            {name: 'cni', hostPath: {path: confDir}},
            {name: 'flannel-cfg', configMap: {name: CONFIG_MAP}},
            {name: 'xtables-lock', hostPath: {path: '/run/xtables.lock', type: 'FileOrCreate'}},
          ],
        },
      },
    },
  }
}

/** The pod CIDR of a k3s server config: its `cluster-cidr` (a list or a comma-separated value), else k3s's default. */
export function clusterCidrOf(config: ServerConfigMap): string {
  const value = config['cluster-cidr']
  const ranges = (Array.isArray(value) ? value : value === undefined ? [] : [String(value)])
    .flatMap((v) => v.split(','))
    .map((r) => r.trim())
    .filter((r) => r !== '')
  return ranges.length > 0 ? ranges.join(',') : K3S_CLUSTER_CIDR
}

export interface CniDecision {
  readonly apply: boolean
  /** Why, in one clause a user can read in the plan ("… so workers keep k3s's own flannel"). */
  readonly reason: string
}

export interface CniDecisionInput {
  /** spec.network.cni. */
  readonly cni: NetworkSettings['cni']
  /** spec.controlPlane.agent. */
  readonly agent: boolean
  /** The k3s server config `up` writes (workarounds and extraArgs included). */
  readonly serverConfig: ServerConfigMap
}

/**
 * Whether hybrid applies flannel to the workers. k3s agents run the flannel of the server's
 * `flannel-backend` (they are told it when they join): only with `none` do they lack a CNI. `auto` follows
 * that; `flannel` always applies it (and `cniServerConfig` turns k3s's own off, so the two never meet);
 * `none` leaves it to the user.
 */
export function cniDecision(input: CniDecisionInput): CniDecision {
  const backend = String(input.serverConfig['flannel-backend'] ?? 'vxlan')
  if (input.cni === 'none') return {apply: false, reason: 'spec.network.cni is none: the cluster brings its own CNI'}
  if (input.cni === 'flannel') return {apply: true, reason: 'spec.network.cni is flannel'}
  if (backend === 'none') {
    return {
      apply: true,
      reason: input.agent
        ? 'the control plane runs an agent with flannel-backend: none (the sandbox cannot run flannel), so workers need a CNI'
        : 'the server runs flannel-backend: none, so workers need a CNI',
    }
  }
  return {
    apply: false,
    reason: input.agent
      ? `the server runs k3s's own flannel (flannel-backend: ${backend}), so workers keep it`
      : "the control plane is agentless, so workers keep k3s's own flannel",
  }
}

/** What `spec.network.cni` adds to the server's config: `flannel` means hybrid's flannel, so k3s runs none. */
export function cniServerConfig(cni: NetworkSettings['cni']): ServerConfigFragment {
  return cni === 'flannel' ? {'flannel-backend': 'none'} : {}
}
