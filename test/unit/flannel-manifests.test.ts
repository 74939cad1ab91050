import {strict as assert} from 'node:assert'

import type {V1ConfigMap, V1DaemonSet, V1NodeSelectorRequirement} from '@kubernetes/client-node'

import {parseInventory} from '../../src/inventory/load.js'
import {buildServerConfig, type ServerConfigMap} from '../../src/k3s/server-config.js'
import {
  clusterCidrOf,
  cniDecision,
  cniServerConfig,
  FLANNEL_CNI_PLUGIN_IMAGE,
  FLANNEL_IMAGE,
  flannelManifests,
} from '../../src/kube/flannel.js'
import {WORKAROUNDS} from '../../src/sandbox/workarounds/index.js'
import {workaroundContext} from '../../src/sandbox/workarounds/workaround.js'

/** The server config `up` would write for these control-plane settings and workaround ids. */
function serverConfig(controlPlane: string, workarounds: string[] = []): ServerConfigMap {
  const text = `apiVersion: hybrid.dev/v1alpha1
kind: Cluster
metadata: {name: lab}
spec:
  token: {file: /etc/hybrid/lab.token}
  controlPlane:
${controlPlane
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => `    ${l}`)
  .join('\n')}
`
  const inventory = parseInventory(text, '/work/lab.yaml')
  const ctx = workaroundContext(inventory, {dataDir: inventory.controlPlane.dataDir, workDir: '/tmp/unused'})
  const fragments = WORKAROUNDS.filter((w) => workarounds.includes(w.id)).map((w) => w.serverConfig(ctx))
  return buildServerConfig({inventory, tokenFile: '/etc/hybrid/lab.token', agentTokenFile: '/a', fragments}).config
}

const byKind = (kind: string) => flannelManifests({clusterCidr: '10.42.0.0/16'}).find((o) => o.kind === kind)
const daemonSet = () => byKind('DaemonSet') as V1DaemonSet
const netConfOf = (clusterCidr: string) => {
  const cm = flannelManifests({clusterCidr}).find((o) => o.kind === 'ConfigMap') as V1ConfigMap
  return JSON.parse(cm.data!['net-conf.json'])
}

describe('flannel for the workers', () => {
  describe('manifests', () => {
    it("are flannel's kube-flannel.yml kinds, in kube-system, in the order they are applied", () => {
      const objects = flannelManifests({clusterCidr: '10.42.0.0/16'})
      assert.deepEqual(
        objects.map((o) => `${o.apiVersion} ${o.kind} ${o.metadata?.namespace ?? '-'}/${o.metadata?.name}`),
        [
          'v1 ServiceAccount kube-system/flannel',
          'rbac.authorization.k8s.io/v1 ClusterRole -/flannel',
          'rbac.authorization.k8s.io/v1 ClusterRoleBinding -/flannel',
          'v1 ConfigMap kube-system/kube-flannel-cfg',
          'apps/v1 DaemonSet kube-system/kube-flannel-ds',
        ],
      )
    })

    it('carry the cluster CIDR into net-conf.json with the vxlan backend', () => {
      assert.deepEqual(netConfOf('10.42.0.0/16'), {
        Network: '10.42.0.0/16',
        EnableNFTables: false,
        Backend: {Type: 'vxlan'},
      })
      assert.equal(netConfOf('10.200.0.0/16').Network, '10.200.0.0/16')
      assert.deepEqual(netConfOf('10.42.0.0/16,2001:cafe:42::/56'), {
        Network: '10.42.0.0/16',
        EnableIPv6: true,
        IPv6Network: '2001:cafe:42::/56',
        EnableNFTables: false,
        Backend: {Type: 'vxlan'},
      })
    })

    it('keep the DaemonSet off the sandbox Node (hybrid.dev/sandbox=true) and on Linux nodes', () => {
      const terms =
        daemonSet().spec!.template.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!
          .nodeSelectorTerms
      assert.equal(terms.length, 1, 'one term: every expression of it must hold')
      const expressions: V1NodeSelectorRequirement[] = terms[0].matchExpressions!
      assert.deepEqual(expressions, [
        {key: 'kubernetes.io/os', operator: 'In', values: ['linux']},
        {key: 'hybrid.dev/sandbox', operator: 'NotIn', values: ['true']},
      ])
    })

    it('pin every image to a version tag (never latest, never untagged)', () => {
      const spec = daemonSet().spec!.template.spec!
      const images = [...spec.initContainers!, ...spec.containers].map((c) => c.image!)
      assert.deepEqual(images, [FLANNEL_CNI_PLUGIN_IMAGE, FLANNEL_IMAGE, FLANNEL_IMAGE])
      for (const image of images) assert.match(image, /^ghcr\.io\/flannel-io\/[a-z-]+:v\d+\.\d+\.\d+(-flannel\d+)?$/)
    })

    it("install the CNI config and plugin into k3s's CNI directories, and run flanneld with the subnet manager", () => {
      const spec = daemonSet().spec!.template.spec!
      const paths = Object.fromEntries(spec.volumes!.map((v) => [v.name, v.hostPath?.path ?? v.configMap?.name]))
      assert.equal(paths.cni, '/var/lib/rancher/k3s/agent/etc/cni/net.d')
      assert.equal(paths['cni-plugin'], '/var/lib/rancher/k3s/data/cni')
      assert.equal(paths['flannel-cfg'], 'kube-flannel-cfg')
      assert.deepEqual(
        spec.initContainers!.map((c) => [c.name, ...c.command!, ...c.args!].join(' ')),
        [
          'install-cni-plugin cp -f /flannel /opt/cni/bin/flannel',
          'install-cni cp -f /etc/kube-flannel/cni-conf.json /etc/cni/net.d/10-flannel.conflist',
        ],
      )
      assert.deepEqual(spec.containers[0].args, ['--ip-masq', '--kube-subnet-mgr'])
      assert.equal(spec.hostNetwork, true)
      assert.equal(spec.serviceAccountName, 'flannel')
      const selector = daemonSet().spec!.selector.matchLabels!
      const labels = daemonSet().spec!.template.metadata!.labels!
      for (const [k, v] of Object.entries(selector)) assert.equal(labels[k], v, 'the selector selects its own pods')
    })
  })

  describe('cluster CIDR', () => {
    it("is k3s's default 10.42.0.0/16 unless extraArgs set --cluster-cidr", () => {
      assert.equal(clusterCidrOf(serverConfig('agent: true')), '10.42.0.0/16')
      assert.equal(clusterCidrOf(serverConfig('extraArgs: ["--cluster-cidr=10.100.0.0/16"]')), '10.100.0.0/16')
      assert.equal(clusterCidrOf(serverConfig('extraArgs: ["--cluster-cidr", "10.7.0.0/16"]')), '10.7.0.0/16')
      assert.equal(
        clusterCidrOf(serverConfig('extraArgs: ["--cluster-cidr=10.42.0.0/16,2001:cafe:42::/56"]')),
        '10.42.0.0/16,2001:cafe:42::/56',
      )
    })
  })

  describe('decision', () => {
    const table: Array<[string, string, string[], boolean, RegExp]> = [
      // cni, control plane, workarounds, apply?, reason
      ['auto', 'agent: true', ['flannel', 'taint'], true, /flannel-backend: none/],
      ['auto', 'agent: true', ['taint'], false, /k3s's own flannel \(flannel-backend: vxlan\)/],
      ['auto', 'agent: false', [], false, /agentless/],
      ['auto', 'agent: false\nextraArgs: ["--flannel-backend=none"]', [], true, /flannel-backend: none/],
      ['auto', 'agent: true\nextraArgs: ["--flannel-backend=wireguard-native"]', [], false, /wireguard-native/],
      ['flannel', 'agent: false', [], true, /cni is flannel/],
      ['flannel', 'agent: true', ['flannel'], true, /cni is flannel/],
      ['none', 'agent: true', ['flannel', 'taint'], false, /brings its own CNI/],
      ['none', 'agent: false', [], false, /brings its own CNI/],
    ]
    for (const [cni, controlPlane, workarounds, apply, reason] of table) {
      it(`cni ${cni}, ${controlPlane.replace('\n', ', ')}, workarounds [${workarounds.join(', ')}]: ${apply ? 'applies' : 'does not'}`, () => {
        const agent = /agent: true/.test(controlPlane)
        const decision = cniDecision({
          cni: cni as 'auto' | 'flannel' | 'none',
          agent,
          serverConfig: serverConfig(controlPlane, workarounds),
        })
        assert.equal(decision.apply, apply)
        assert.match(decision.reason, reason)
      })
    }

    it("turns k3s's own flannel off only when the inventory asks for hybrid's", () => {
      assert.deepEqual(cniServerConfig('flannel'), {'flannel-backend': 'none'})
      assert.deepEqual(cniServerConfig('auto'), {})
      assert.deepEqual(cniServerConfig('none'), {})
    })
  })
})
