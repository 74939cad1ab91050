import {strict as assert} from 'node:assert'
import {mkdtemp, readdir, readFile, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {parse} from 'yaml'

import {HybridError} from '../../src/errors.js'
import {parseInventory} from '../../src/inventory/load.js'
import {
  agentTokenSecretPath,
  buildServerConfig,
  parseExtraArgs,
  serverConfigPath,
  serverConfigYaml,
  writeServerConfig,
} from '../../src/k3s/server-config.js'
import {sandboxCniConfig} from '../../src/k3s/sandbox-cni.js'

/** A real inventory through the real loader, with the control plane settings given. */
function inventory(controlPlane: string, name = 'lab') {
  const text = `apiVersion: hybrid.dev/v1alpha1
kind: Cluster
metadata: {name: ${name}}
spec:
  token: {file: /etc/hybrid/${name}.token}
  controlPlane:
    dataDir: /var/lib/hybrid/${name}
${controlPlane
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => `    ${l}`)
  .join('\n')}
`
  return parseInventory(text, '/work/lab.yaml')
}

describe('k3s server config', () => {
  it('sets data dir, token file, addresses, port, node name, the sandbox label and a 0600 kubeconfig in the data dir', () => {
    const inv = inventory('advertiseAddress: 100.64.255.1\napiPort: 16443')
    const agentTokenFile = agentTokenSecretPath(inv.controlPlane.dataDir)
    const {config, commandLine} = buildServerConfig({
      inventory: inv,
      tokenFile: '/etc/hybrid/lab.token',
      agentTokenFile,
      fragments: [],
    })
    assert.deepEqual(config, {
      'data-dir': '/var/lib/hybrid/lab',
      'token-file': '/etc/hybrid/lab.token',
      'agent-token-file': '/var/lib/hybrid/lab/hybrid-agent-token',
      'advertise-address': '100.64.255.1',
      'tls-san': ['100.64.255.1', '127.0.0.1', 'localhost'],
      'https-listen-port': 16443,
      'write-kubeconfig': '/var/lib/hybrid/lab/kubeconfig.yaml',
      'write-kubeconfig-mode': '0600',
      'node-name': 'lab-server',
      'node-label': ['hybrid.dev/sandbox=true'],
    })
    assert.deepEqual(commandLine, [])
  })

  it('runs agentless with disable-agent and no node name', () => {
    const {config} = buildServerConfig({
      inventory: inventory('agent: false'),
      tokenFile: '/t',
      agentTokenFile: '/a',
      fragments: [],
    })
    assert.equal(config['disable-agent'], true)
    assert.equal(config['node-name'], undefined)
  })

  it('merges workaround fragments in order: lists append, scalars replace', () => {
    const {config} = buildServerConfig({
      inventory: inventory(''),
      tokenFile: '/t',
      agentTokenFile: '/a',
      fragments: [
        {snapshotter: 'native'},
        {'kubelet-arg': ['local-storage-capacity-isolation=false', 'image-gc-high-threshold=100']},
        {'node-taint': ['hybrid.dev/sandbox=true:NoSchedule'], 'node-label': ['hybrid.dev/sandbox=true']},
        {'kubelet-arg': ['cgroups-per-qos=false'], 'tls-san': ['sandbox.example']},
      ],
    })
    assert.equal(config.snapshotter, 'native')
    assert.deepEqual(config['kubelet-arg'], [
      'local-storage-capacity-isolation=false',
      'image-gc-high-threshold=100',
      'cgroups-per-qos=false',
    ])
    assert.deepEqual(config['node-taint'], ['hybrid.dev/sandbox=true:NoSchedule'])
    assert.deepEqual(config['node-label'], ['hybrid.dev/sandbox=true'])
    assert.deepEqual(config['tls-san'], ['100.64.255.1', '127.0.0.1', 'localhost', 'sandbox.example'])
  })

  it("turns extraArgs into config keys after hybrid's own; single-dash flags stay on the command line", () => {
    const inv = inventory(
      `extraArgs: ["--disable=traefik", "--disable", "servicelb", "--kubelet-arg=max-pods=50", "--tls-san=api.lab", "--debug", "-v", "3", "--snapshotter=fuse-overlayfs", "--secrets-encryption=true"]`,
    )
    const {config, commandLine} = buildServerConfig({
      inventory: inv,
      tokenFile: '/t',
      agentTokenFile: '/a',
      fragments: [{snapshotter: 'native', 'kubelet-arg': ['cgroups-per-qos=false']}],
    })
    assert.deepEqual(config.disable, ['traefik', 'servicelb'], 'a flag repeated in extraArgs becomes a list')
    assert.deepEqual(config['kubelet-arg'], ['cgroups-per-qos=false', 'max-pods=50'], 'appends to a workaround list')
    assert.deepEqual(config['tls-san'], ['100.64.255.1', '127.0.0.1', 'localhost', 'api.lab'])
    assert.equal(config.debug, true, 'a bare flag is true')
    assert.equal(config.snapshotter, 'fuse-overlayfs', 'a scalar from extraArgs replaces the workaround one')
    assert.equal(config['secrets-encryption'], true)
    assert.deepEqual(commandLine, ['-v', '3'])
    const keys = Object.keys(config)
    assert.ok(
      keys.indexOf('disable') > keys.indexOf('snapshotter'),
      "extraArgs keys come after hybrid's and the workarounds'",
    )
  })

  it('refuses extraArgs that would change what hybrid manages, naming the inventory field to use', () => {
    for (const [arg, field] of [
      ['--data-dir=/x', 'spec.controlPlane.dataDir'],
      ['--https-listen-port', 'spec.controlPlane.apiPort'],
      ['--token=secret', 'spec.token'],
      ['--write-kubeconfig=/tmp/k', 'hybrid kubeconfig'],
      ['--agent-token=secret', 'agent token of their own'],
      ['--agent-token-file=/tmp/a', 'agent token of their own'],
    ]) {
      assert.throws(
        () =>
          buildServerConfig({
            inventory: inventory(`extraArgs: ["${arg}"]`),
            tokenFile: '/t',
            agentTokenFile: '/a',
            fragments: [],
          }),
        (error: HybridError) =>
          error.exitCode === 2 &&
          error.message.includes('/work/lab.yaml spec.controlPlane.extraArgs') &&
          error.message.includes(field) &&
          !error.message.includes('secret'),
        arg,
      )
    }
  })

  it('parses --flag value, --flag=value and a bare flag before another flag', () => {
    assert.deepEqual(parseExtraArgs(['--a', 'x', '--b=y=z', '--c', '--d', 'w']).flags, [
      ['a', 'x'],
      ['b', 'y=z'],
      ['c', true],
      ['d', 'w'],
    ])
  })

  it('renders YAML that parses back to the same config, with the mode as a string', () => {
    const {config} = buildServerConfig({
      inventory: inventory('apiPort: 7443'),
      tokenFile: '/t',
      agentTokenFile: '/a',
      fragments: [{'kubelet-arg': ['enforce-node-allocatable=']}],
    })
    const text = serverConfigYaml(config)
    assert.match(text, /^# written by hybrid/)
    assert.match(text, /write-kubeconfig-mode: "0600"/)
    assert.deepEqual(parse(text), config)
  })

  describe('writing', () => {
    let dir: string
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'hybrid-server-config-'))
    })
    afterEach(async () => {
      await rm(dir, {recursive: true, force: true})
    })

    it('writes <dataDir>/config.yaml atomically with mode 0600', async () => {
      const path = serverConfigPath(dir)
      assert.equal(path, join(dir, 'config.yaml'))
      await writeServerConfig(path, {'data-dir': dir, 'tls-san': ['a', 'b']})
      await writeServerConfig(path, {'data-dir': dir, 'tls-san': ['c']})
      assert.equal((await stat(path)).mode & 0o777, 0o600)
      assert.deepEqual(parse(await readFile(path, 'utf8')), {'data-dir': dir, 'tls-san': ['c']})
      assert.deepEqual(await readdir(dir), ['config.yaml'])
    })
  })

  it("without flannel, the server's own kubelet gets a loopback-only CNI config where k3s's containerd reads it", () => {
    const inv = inventory('agent: true')
    const {config} = buildServerConfig({
      inventory: inv,
      tokenFile: '/etc/hybrid/lab.token',
      agentTokenFile: '/a',
      fragments: [{'flannel-backend': 'none'}],
    })
    const cni = sandboxCniConfig(inv.controlPlane.dataDir, config, inv.controlPlane.agent)
    assert.equal(cni?.path, '/var/lib/hybrid/lab/agent/etc/cni/net.d/90-hybrid-loopback.conflist')
    assert.deepEqual(JSON.parse(cni.content).plugins, [{type: 'loopback'}])
    // k3s's own flannel writes its own config; an agentless server has no kubelet.
    const withFlannel = buildServerConfig({
      inventory: inv,
      tokenFile: '/etc/hybrid/lab.token',
      agentTokenFile: '/a',
      fragments: [],
    })
    assert.equal(sandboxCniConfig(inv.controlPlane.dataDir, withFlannel.config, true), undefined)
    assert.equal(sandboxCniConfig(inv.controlPlane.dataDir, config, false), undefined)
  })
})
