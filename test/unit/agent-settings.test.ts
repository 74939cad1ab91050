import {strict as assert} from 'node:assert'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {parse} from 'yaml'

import {agentConfig, agentEnvFile, agentSpecFor} from '../../src/agent/agent-config.js'
import {registriesYaml} from '../../src/agent/registries.js'
import {flannelManifests} from '../../src/kube/flannel.js'
import {redactString} from '../../src/log/redact.js'
import {problemsOf, inventoryOf} from './inventory-fixtures.js'

/**
 * spec.agent and workers[].agent (k3s agent keys checked against k3s's flag names, environment, files),
 * spec.registries written as k3s's registries.yaml, and the flannel images' registry.
 */

const lines = (...text: string[]) => `${text.join('\n')}\n`
const HEAD = ['apiVersion: hybrid.dev/v1alpha1', 'kind: Cluster', 'metadata: {name: lab}', 'spec:', '  token: {env: T}']
const FACTS = {interfaceAddresses: [{interface: 'eth0', address: '10.0.0.1'}]}

describe('agent settings, registries and images in the inventory', () => {
  it("merges a worker's agent over spec.agent key by key into its config.yaml and env file", () => {
    const inventory = inventoryOf(
      lines(
        ...HEAD,
        '  agent:',
        '    kubelet-arg: [max-pods=50]',
        '    flannel-iface: eth1',
        '    node-label: [tier=edge]',
        '    environment: {HTTP_PROXY: "http://user:s3cret-proxy@proxy:3128", NO_PROXY: "10.0.0.0/8"}',
        '    files: [{source: ./ca.crt, destination: /etc/ssl/hybrid-ca.crt}]',
        '  workers:',
        '    - {name: w1, address: 10.0.0.1, labels: {zone: a}}',
        '    - name: w2',
        '      address: 10.0.0.2',
        '      agent:',
        '        flannel-iface: eth2',
        '        environment: {NO_PROXY: "localhost"}',
        '        files: [{source: /srv/other.crt, destination: /etc/ssl/hybrid-ca.crt, mode: "0600"}]',
      ),
      '/srv/inv/lab.yaml',
    )
    const [w1, w2] = inventory.workers
    assert.deepEqual(w1.agent?.files, [{source: '/srv/inv/ca.crt', destination: '/etc/ssl/hybrid-ca.crt', mode: 0o644}])
    assert.deepEqual(w2.agent?.files, [{source: '/srv/other.crt', destination: '/etc/ssl/hybrid-ca.crt', mode: 0o600}])
    assert.deepEqual(w2.agent?.environment, {HTTP_PROXY: 'http://user:s3cret-proxy@proxy:3128', NO_PROXY: 'localhost'})

    const c1 = parse(agentConfig(agentSpecFor(w1, 'https://100.64.255.1:6443', FACTS, 'lab'))) as Record<
      string,
      unknown
    >
    assert.deepEqual(c1['kubelet-arg'], ['max-pods=50'])
    assert.equal(c1['flannel-iface'], 'eth1')
    assert.deepEqual(c1['node-label'], ['zone=a', 'hybrid.dev/worker=lab', 'tier=edge'])
    assert.equal(c1.server, 'https://100.64.255.1:6443')
    const c2 = parse(agentConfig(agentSpecFor(w2, 'https://100.64.255.1:6443', FACTS, 'lab'))) as Record<
      string,
      unknown
    >
    assert.equal(c2['flannel-iface'], 'eth2')
    assert.deepEqual(c2['kubelet-arg'], ['max-pods=50'])

    const spec = agentSpecFor(w2, 'https://100.64.255.1:6443', FACTS, 'lab')
    assert.equal(
      agentEnvFile(spec.environment),
      "# Environment of the k3s agent, written by hybrid.\nHTTP_PROXY='http://user:s3cret-proxy@proxy:3128'\nNO_PROXY='localhost'\n",
    )
    assert.ok(!agentConfig(spec).includes('s3cret-proxy'), 'the environment is not in config.yaml')
    assert.equal(redactString('proxy http://user:s3cret-proxy@proxy:3128'), 'proxy [redacted]')
  })

  it('refuses keys hybrid sets and keys k3s agent does not have, naming line and column', () => {
    const problems = problemsOf(
      lines(
        ...HEAD,
        '  agent:',
        '    server: https://elsewhere:6443',
        '    kubelet-args: [max-pods=50]',
        '    flannel-iface: [eth0, eth1]',
        '  workers:',
        '    - name: w1',
        '      address: 10.0.0.1',
        '      agent:',
        '        node-ip: 10.0.0.9',
        '        node-label: [hybrid.dev/worker=other]',
        '        files: [{source: ./x, destination: /etc/rancher/k3s/registries.yaml}]',
      ),
    )
    const seen = problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`)
    assert.deepEqual(seen, [
      '7:5 spec.agent.server: server is set by hybrid: hybrid sets the server (the advertised address, controlPlane.advertiseAddress and apiPort)',
      "8:5 spec.agent.kubelet-args: kubelet-args is not a flag of k3s agent (keys are k3s agent's flag names, such as kubelet-arg, flannel-iface, node-label)",
      '9:20 spec.agent.flannel-iface: flannel-iface takes one value, not a list',
      "14:9 spec.workers[0].agent.node-ip: node-ip is set by hybrid: set the worker's internalAddress instead",
      "15:22 spec.workers[0].agent.node-label[0]: hybrid.dev/worker is hybrid's own label, which tells this cluster's Nodes from others of the same name",
      '16:44 spec.workers[0].agent.files[0].destination: /etc/rancher/k3s/registries.yaml is written by hybrid or k3s; upload files elsewhere (image archives go in spec.images.archives)',
    ])
  })

  it('writes registries.yaml with the password from a file or a variable taken out of the environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-registries-'))
    try {
      await writeFile(join(dir, 'pw'), 'file-pass-1234\n')
      process.env.HYBRID_TEST_REGISTRY_PW = 'env-pass-5678'
      const inventory = inventoryOf(
        lines(
          ...HEAD,
          '  registries:',
          '    mirrors: {docker.io: {endpoint: ["https://mirror.example:5000"]}}',
          '    configs:',
          '      "mirror.example:5000": {auth: {username: u1, passwordFile: ./pw}, tls: {caFile: /etc/ssl/m.crt}}',
          '      other.example: {auth: {username: u2, passwordEnv: HYBRID_TEST_REGISTRY_PW}}',
          '  images: {flannelRegistry: "mirror.example:5000/ghcr"}',
        ),
        join(dir, 'lab.yaml'),
      )
      const text = await registriesYaml(inventory.registries!)
      assert.deepEqual(parse(text), {
        mirrors: {'docker.io': {endpoint: ['https://mirror.example:5000']}},
        configs: {
          'mirror.example:5000': {auth: {username: 'u1', password: 'file-pass-1234'}, tls: {ca_file: '/etc/ssl/m.crt'}},
          'other.example': {auth: {username: 'u2', password: 'env-pass-5678'}},
        },
      })
      assert.equal(process.env.HYBRID_TEST_REGISTRY_PW, undefined, 'the variable is out of the environment')
      assert.equal(redactString('file-pass-1234 env-pass-5678'), '[redacted] [redacted]')
      const ds = flannelManifests({clusterCidr: '10.42.0.0/16', registry: inventory.images.flannelRegistry}).find(
        (o) => o.kind === 'DaemonSet',
      ) as {spec: {template: {spec: {initContainers: {image: string}[]; containers: {image: string}[]}}}}
      const images = [...ds.spec.template.spec.initContainers, ...ds.spec.template.spec.containers].map((c) => c.image)
      assert.ok(
        images.every((i) => i.startsWith('mirror.example:5000/ghcr/flannel-io/')),
        images.join(' '),
      )
    } finally {
      delete process.env.HYBRID_TEST_REGISTRY_PW
      await rm(dir, {recursive: true, force: true})
    }
  })

  it('asks for exactly one password source per registry', () => {
    const problems = problemsOf(lines(...HEAD, '  registries:', '    configs: {r.example: {auth: {username: u}}}'))
    assert.deepEqual(
      problems.map((p) => `${p.path}: ${p.message}`),
      [
        'spec.registries.configs["r.example"].auth: needs exactly one of passwordFile (a local file holding the password) or passwordEnv (an environment variable that holds it)',
      ],
    )
  })
})
