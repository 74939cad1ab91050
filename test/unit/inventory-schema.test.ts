import {strict as assert} from 'node:assert'

import {explainFormat, FORMATS, type FormatName} from '../../src/inventory/formats.js'
import {brief, type Doc, ED25519_KEY, minimal, problemsOfDoc} from './inventory-fixtures.js'

/**
 * Every rule of the inventory format, table-driven: each good example validates, each bad example
 * gives exactly one problem, on the expected field, in the expected words.
 */

type Edit = (doc: Doc) => void
const worker = (doc: Doc, index = 0): Doc => doc.spec.workers[index]

const good: [string, Edit][] = [
  ['the minimal inventory', () => {}],
  ['no workers (a control-plane-only cluster)', (d) => (d.spec.workers = [])],
  ['no workers key at all', (d) => delete d.spec.workers],
  ['a token from the environment', (d) => (d.spec.token = {env: 'HYBRID_TOKEN'})],
  ['an IPv6 worker address', (d) => (worker(d).address = '2001:db8::11')],
  ['a DNS worker address', (d) => (worker(d).address = 'node-1.example.com')],
  ['an upper-case DNS worker address', (d) => (worker(d).address = 'Node-1.Example.COM')],
  ['a 63-character worker name', (d) => (worker(d).name = 'a'.repeat(63))],
  [
    "a worker's internal and external addresses",
    (d) => Object.assign(worker(d), {internalAddress: '10.0.0.5', externalAddress: '2001:db8::5'}),
  ],
  [
    'labels with and without prefix, an empty value',
    (d) => (worker(d).labels = {zone: 'a', 'example.com/tier': 'Gold_1.x', empty: ''}),
  ],
  [
    'labels the kubelet may set',
    (d) =>
      (worker(d).labels = {
        'topology.kubernetes.io/zone': 'a',
        'node.kubernetes.io/pool': 'x',
        'team.kubelet.kubernetes.io/x': 'y',
      }),
  ],
  [
    'taints of every effect',
    (d) => (worker(d).taints = ['a=b:NoSchedule', 'c:PreferNoSchedule', 'example.com/d=e:NoExecute', 'a:NoExecute']),
  ],
  ['pinned with a host key', (d) => Object.assign(worker(d), {ssh: {hostKeyPolicy: 'pinned'}, hostKey: ED25519_KEY})],
  [
    'pinned for all, each with a key',
    (d) => {
      d.spec.ssh = {hostKeyPolicy: 'pinned'}
      for (const w of d.spec.workers) w.hostKey = `${ED25519_KEY} root@host`
    },
  ],
  [
    'a worker overriding every ssh key',
    (d) =>
      (worker(d).ssh = {
        user: 'ubuntu',
        port: 2222,
        identityFile: null,
        knownHosts: 'kh',
        hostKeyPolicy: 'accept-new',
        sudo: 'password',
        bastion: null,
        proxy: 'env',
        connectTimeoutSeconds: 5,
      }),
  ],
  ['a bastion with only an address', (d) => (d.spec.ssh = {bastion: {address: 'jump.example.com'}})],
  [
    'a full bastion',
    (d) => (d.spec.ssh = {bastion: {address: '192.0.2.1', port: 2200, user: 'jump', identityFile: '~/.ssh/jump'}}),
  ],
  ['an HTTP proxy', (d) => (d.spec.ssh = {proxy: 'http://proxy.internal:3128'})],
  ['workarounds all', (d) => (d.spec.controlPlane = {workarounds: 'all'})],
  ['workarounds none', (d) => (d.spec.controlPlane = {workarounds: 'none'})],
  ['a workaround list', (d) => (d.spec.controlPlane = {workarounds: ['procsys', 'kmsg', 'cnibin']})],
  ['an empty workaround list', (d) => (d.spec.controlPlane = {workarounds: []})],
  [
    'an agentless control plane with extra args',
    (d) => (d.spec.controlPlane = {agent: false, extraArgs: ['--debug'], dataDir: './data'}),
  ],
  [
    'direct mode with a routable address',
    (d) =>
      Object.assign(d.spec, {
        network: {mode: 'direct', cni: 'flannel', manageSshd: false},
        controlPlane: {advertiseAddress: '192.0.2.5', apiPort: 16443},
      }),
  ],
  [
    'a k3s pin, binary, mirror and image',
    (d) =>
      (d.spec.k3s = {
        version: 'v1.33.0-rc1+k3s2',
        binary: './k3s',
        sha256: 'a'.repeat(64),
        mirror: 'https://mirror.example.com/k3s',
        image: 'registry.example.com/k3s',
      }),
  ],
  ['port 1 and 65535', (d) => (d.spec.ssh = {port: 65535, bastion: {address: 'j', port: 1}})],
  [
    'concurrency 1 and service openrc',
    (d) => Object.assign(d.spec, {concurrency: 1}, {workers: [{name: 'w', address: 'h', service: 'openrc'}]}),
  ],
]

/** [what, edit, field path, message (a RegExp, or the exact sentence)]. */
const bad: [string, Edit, string, RegExp | string][] = [
  // document
  ['a wrong apiVersion', (d) => (d.apiVersion = 'v1'), 'apiVersion', 'must be hybrid.dev/v1alpha1, not "v1"'],
  ['a wrong kind', (d) => (d.kind = 'Clusterr'), 'kind', 'must be Cluster, not "Clusterr" (did you mean "Cluster"?)'],
  ['no kind', (d) => delete d.kind, 'kind', 'is required'],
  ['no spec', (d) => delete d.spec, 'spec', 'is required'],
  ['an unknown top-level key', (d) => (d.metdata = {}), 'metdata', 'unknown key "metdata" (did you mean "metadata"?)'],
  [
    'an unknown key with no near match',
    (d) => (d.spec.colour = 'red'),
    'spec.colour',
    /^unknown key "colour"; the keys here are k3s, token, controlPlane, network, ssh, concurrency, agent, registries, images, upgrade, workers$/,
  ],
  // metadata
  ['no cluster name', (d) => (d.metadata = {}), 'metadata.name', 'is required'],
  [
    'an upper-case cluster name',
    (d) => (d.metadata.name = 'Lab'),
    'metadata.name',
    '"Lab" is not a DNS-1123 label: use lower case',
  ],
  [
    'a cluster name with "_"',
    (d) => (d.metadata.name = 'my_lab'),
    'metadata.name',
    /^"my_lab" is not a DNS-1123 label: only lower-case letters/,
  ],
  [
    'a 64-character cluster name',
    (d) => (d.metadata.name = 'a'.repeat(64)),
    'metadata.name',
    /it has 64 characters, more than 63/,
  ],
  ['a cluster name ending in "-"', (d) => (d.metadata.name = 'lab-'), 'metadata.name', /is not a DNS-1123 label/],
  // token
  [
    'both token sources',
    (d) => (d.spec.token = {file: 't', env: 'T'}),
    'spec.token',
    'give exactly one of file and env, not both',
  ],
  ['no token source', (d) => (d.spec.token = {}), 'spec.token', /^needs exactly one of file .* or env/],
  ['no token key', (d) => delete d.spec.token, 'spec.token', /^needs exactly one of file/],
  [
    'a bad env name',
    (d) => (d.spec.token = {env: '1TOKEN'}),
    'spec.token.env',
    '"1TOKEN" is not an environment variable name',
  ],
  ['an empty token file', (d) => (d.spec.token = {file: ''}), 'spec.token.file', 'must not be empty'],
  // k3s
  [
    'a k3s version without +k3s',
    (d) => (d.spec.k3s = {version: 'v1.34.1'}),
    'spec.k3s.version',
    '"v1.34.1" is not a k3s release such as v1.34.1+k3s1',
  ],
  ['a short sha256', (d) => (d.spec.k3s = {sha256: 'abc'}), 'spec.k3s.sha256', /is not a sha256 digest/],
  [
    'an ftp mirror',
    (d) => (d.spec.k3s = {mirror: 'ftp://m.example.com/'}),
    'spec.k3s.mirror',
    '"ftp://m.example.com/" is not an http or https URL: the scheme is "ftp", expected http or https',
  ],
  [
    'a mirror that is not a URL',
    (d) => (d.spec.k3s = {mirror: 'mirror'}),
    'spec.k3s.mirror',
    '"mirror" is not an http or https URL',
  ],
  // controlPlane
  [
    'an unknown workarounds word',
    (d) => (d.spec.controlPlane = {workarounds: 'some'}),
    'spec.controlPlane.workarounds',
    'must be one of auto, all, none, or a list of workaround ids, not "some"',
  ],
  [
    'a number for workarounds',
    (d) => (d.spec.controlPlane = {workarounds: 3}),
    'spec.controlPlane.workarounds',
    'must be one of auto, all, none, or a list of workaround ids, not 3',
  ],
  [
    'an unknown workaround id',
    (d) => (d.spec.controlPlane = {workarounds: ['procsys', 'kmesg']}),
    'spec.controlPlane.workarounds[1]',
    /^must be one of snapshotter, cadvisor, procsys, kmsg, .*, not "kmesg" \(did you mean "kmsg"\?\)$/,
  ],
  [
    'a workaround listed twice',
    (d) => (d.spec.controlPlane = {workarounds: ['kmsg', 'taint', 'kmsg']}),
    'spec.controlPlane.workarounds[2]',
    '"kmsg" appears twice (items 0 and 2)',
  ],
  [
    'agent: yes (a string in YAML 1.2)',
    (d) => (d.spec.controlPlane = {agent: 'yes'}),
    'spec.controlPlane.agent',
    'must be true or false, not "yes"',
  ],
  [
    'an advertise address that is not IPv4',
    (d) => (d.spec.controlPlane = {advertiseAddress: '10.0.0.256'}),
    'spec.controlPlane.advertiseAddress',
    '"10.0.0.256" is not an IPv4 address',
  ],
  [
    'a loopback advertise address in tunnel mode',
    (d) => (d.spec.controlPlane = {advertiseAddress: '127.0.0.2'}),
    'spec.controlPlane.advertiseAddress',
    /^"127.0.0.2" is a loopback address; .*keep the default 100.64.255.1/,
  ],
  [
    'a link-local advertise address',
    (d) => (d.spec.controlPlane = {advertiseAddress: '169.254.1.1'}),
    'spec.controlPlane.advertiseAddress',
    /^"169.254.1.1" is a link-local address/,
  ],
  [
    'a loopback advertise address in direct mode',
    (d) => Object.assign(d.spec, {network: {mode: 'direct'}, controlPlane: {advertiseAddress: '127.0.0.1'}}),
    'spec.controlPlane.advertiseAddress',
    /loopback address; .*use an address of the sandbox that the workers can reach/,
  ],
  [
    'apiPort 0',
    (d) => (d.spec.controlPlane = {apiPort: 0}),
    'spec.controlPlane.apiPort',
    'must be from 1 to 65535, not 0',
  ],
  [
    'apiPort 65536',
    (d) => (d.spec.controlPlane = {apiPort: 65536}),
    'spec.controlPlane.apiPort',
    'must be from 1 to 65535, not 65536',
  ],
  [
    'apiPort 64.5',
    (d) => (d.spec.controlPlane = {apiPort: 64.5}),
    'spec.controlPlane.apiPort',
    'must be a whole number, not 64.5',
  ],
  [
    'extraArgs with a number',
    (d) => (d.spec.controlPlane = {extraArgs: ['--a', 5]}),
    'spec.controlPlane.extraArgs[1]',
    'must be a string, not 5 (put it in quotes)',
  ],
  [
    'extraArgs as a string',
    (d) => (d.spec.controlPlane = {extraArgs: '--a'}),
    'spec.controlPlane.extraArgs',
    'must be a list, not "--a"',
  ],
  // network
  [
    'an unknown network mode',
    (d) => (d.spec.network = {mode: 'bridge'}),
    'spec.network.mode',
    'must be one of tunnel, direct, not "bridge"',
  ],
  [
    'an unknown cni',
    (d) => (d.spec.network = {cni: 'calico'}),
    'spec.network.cni',
    'must be one of auto, flannel, none, not "calico"',
  ],
  // ssh
  ['ssh port 70000', (d) => (d.spec.ssh = {port: 70000}), 'spec.ssh.port', 'must be from 1 to 65535, not 70000'],
  ['ssh port as text', (d) => (d.spec.ssh = {port: 'ssh'}), 'spec.ssh.port', 'must be a whole number, not "ssh"'],
  ['an empty ssh user', (d) => (d.spec.ssh = {user: ''}), 'spec.ssh.user', 'must not be empty'],
  [
    'a misspelt host-key policy',
    (d) => (d.spec.ssh = {hostKeyPolicy: 'stict'}),
    'spec.ssh.hostKeyPolicy',
    'must be one of strict, accept-new, pinned, not "stict" (did you mean "strict"?)',
  ],
  [
    'an unknown sudo mode',
    (d) => (d.spec.ssh = {sudo: 'always'}),
    'spec.ssh.sudo',
    'must be one of auto, never, nopasswd, password, not "always"',
  ],
  [
    'a SOCKS proxy',
    (d) => (d.spec.ssh = {proxy: 'socks5://p:1080'}),
    'spec.ssh.proxy',
    '"socks5://p:1080" is not an HTTP proxy: the scheme is "socks5", expected http (an HTTP CONNECT proxy)',
  ],
  [
    'a proxy without a port',
    (d) => (d.spec.ssh = {proxy: 'http://proxy'}),
    'spec.ssh.proxy',
    '"http://proxy" is not an HTTP proxy: expected exactly "http://host:port"',
  ],
  [
    'a proxy with a password is not echoed',
    (d) => (d.spec.ssh = {proxy: 'http://u:secret@proxy'}),
    'spec.ssh.proxy',
    /^the proxy URL is not an HTTP proxy/,
  ],
  [
    'a proxy that is a number',
    (d) => (d.spec.ssh = {proxy: 8080}),
    'spec.ssh.proxy',
    'must be an HTTP proxy or null, not 8080',
  ],
  [
    'a zero connect timeout',
    (d) => (d.spec.ssh = {connectTimeoutSeconds: 0}),
    'spec.ssh.connectTimeoutSeconds',
    'must be from 1 to 3600, not 0',
  ],
  [
    'a bastion without an address',
    (d) => (d.spec.ssh = {bastion: {user: 'jump'}}),
    'spec.ssh.bastion.address',
    'is required',
  ],
  [
    'a bastion with a bad address',
    (d) => (d.spec.ssh = {bastion: {address: 'jump host'}}),
    'spec.ssh.bastion.address',
    '"jump host" is not an IP address or host name',
  ],
  [
    'a bastion with an unknown key',
    (d) => (d.spec.ssh = {bastion: {address: 'j', hostname: 'x'}}),
    'spec.ssh.bastion.hostname',
    /^unknown key "hostname"; the keys here are address, port, user, identityFile$/,
  ],
  [
    'a bastion as a string',
    (d) => (d.spec.ssh = {bastion: 'jump'}),
    'spec.ssh.bastion',
    'must be a mapping or null, not "jump"',
  ],
  [
    'an unknown ssh key',
    (d) => (d.spec.ssh = {identity: 'x'}),
    'spec.ssh.identity',
    'unknown key "identity" (did you mean "identityFile"?)',
  ],
  // concurrency
  ['concurrency 0', (d) => (d.spec.concurrency = 0), 'spec.concurrency', 'must be from 1 to 256, not 0'],
  ['concurrency 257', (d) => (d.spec.concurrency = 257), 'spec.concurrency', 'must be from 1 to 256, not 257'],
  // workers
  ['workers as a mapping', (d) => (d.spec.workers = {w1: {}}), 'spec.workers', 'must be a list, not a mapping'],
  ['a worker that is a string', (d) => (d.spec.workers[1] = 'w2'), 'spec.workers[1]', 'must be a mapping, not "w2"'],
  ['a worker without an address', (d) => delete worker(d, 1).address, 'spec.workers[1].address', 'is required'],
  ['a worker without a name', (d) => delete worker(d, 1).name, 'spec.workers[1].name', 'is required'],
  [
    'a misspelt worker key',
    (d) => (worker(d).adress = 'x'),
    'spec.workers[0].adress',
    'unknown key "adress" (did you mean "address"?)',
  ],
  [
    'an upper-case worker name',
    (d) => (worker(d).name = 'W1'),
    'spec.workers[0].name',
    '"W1" is not a DNS-1123 label: use lower case',
  ],
  [
    'an IP address with a part over 255',
    (d) => (worker(d, 1).address = '10.0.0.300'),
    'spec.workers[1].address',
    '"10.0.0.300" is not an IP address or host name',
  ],
  [
    "a worker named as the sandbox's own Node",
    (d) => (worker(d, 1).name = 'lab-server'),
    'spec.workers[1].name',
    `"lab-server" is the name of the sandbox's own Node (metadata.name + "-server"), which hybrid would then take for this worker's; choose another name`,
  ],
  [
    'an internalAddress that is a DNS name',
    (d) => (worker(d).internalAddress = 'w1.example'),
    'spec.workers[0].internalAddress',
    '"w1.example" is not an IP address',
  ],
  [
    'a loopback externalAddress',
    (d) => (worker(d).externalAddress = '127.0.0.1'),
    'spec.workers[0].externalAddress',
    '"127.0.0.1" is a loopback address, which the kubelet refuses as a Node address',
  ],
  [
    'a host name with "_"',
    (d) => (worker(d).address = 'bad_host.example.com'),
    'spec.workers[0].address',
    '"bad_host.example.com" is not an IP address or host name',
  ],
  [
    'a host name ending in "-"',
    (d) => (worker(d).address = 'host-.example.com'),
    'spec.workers[0].address',
    '"host-.example.com" is not an IP address or host name',
  ],
  [
    'an address in brackets',
    (d) => (worker(d).address = '[2001:db8::1]'),
    'spec.workers[0].address',
    '"[2001:db8::1]" is not an IP address or host name',
  ],
  [
    'an empty address',
    (d) => (worker(d).address = null),
    'spec.workers[0].address',
    'must be an IP address or host name, not empty',
  ],
  [
    'two workers with one name',
    (d) => (worker(d, 1).name = 'w1'),
    'spec.workers[1].name',
    '"w1" is already the name of spec.workers[0]; worker names must be unique',
  ],
  [
    'two workers with one address',
    (d) => (worker(d, 1).address = '10.213.0.11'),
    'spec.workers[1].address',
    '"10.213.0.11" is already the address of spec.workers[0]; worker addresses must be unique',
  ],
  [
    'one host name in two cases',
    (d) =>
      Object.assign(d.spec, {
        workers: [
          {name: 'a', address: 'h.example.com'},
          {name: 'b', address: 'H.Example.com'},
        ],
      }),
    'spec.workers[1].address',
    /^"H.Example.com" is already the address of spec.workers\[0\]/,
  ],
  [
    'a label key with spaces',
    (d) => (worker(d).labels = {'my zone': 'a'}),
    'spec.workers[0].labels["my zone"]',
    /^"my zone" is not a Kubernetes label key: the name may hold only/,
  ],
  [
    'a label key with an upper-case prefix',
    (d) => (worker(d).labels = {'Example.com/zone': 'a'}),
    'spec.workers[0].labels["Example.com/zone"]',
    /the prefix "Example.com" is not a DNS subdomain/,
  ],
  [
    'a label key with an empty prefix',
    (d) => (worker(d).labels = {'/zone': 'a'}),
    'spec.workers[0].labels["/zone"]',
    /the prefix before "\/" is empty/,
  ],
  [
    'a label name over 63 characters',
    (d) => (worker(d).labels = {[`x/${'n'.repeat(64)}`]: 'a'}),
    `spec.workers[0].labels["x/${'n'.repeat(64)}"]`,
    /the name has 64 characters, more than 63/,
  ],
  [
    'a label value with spaces',
    (d) => (worker(d).labels = {zone: 'a b'}),
    'spec.workers[0].labels.zone',
    /^"a b" is not a Kubernetes label value/,
  ],
  [
    'a label value over 63 characters',
    (d) => (worker(d).labels = {zone: 'v'.repeat(64)}),
    'spec.workers[0].labels.zone',
    /it has 64 characters, more than 63/,
  ],
  [
    'a label value that is a number',
    (d) => (worker(d).labels = {zone: 1}),
    'spec.workers[0].labels.zone',
    'must be a Kubernetes label value, not 1 (put it in quotes)',
  ],
  [
    'a node-role label the kubelet refuses',
    (d) => (worker(d).labels = {'node-role.kubernetes.io/worker': ''}),
    'spec.workers[0].labels["node-role.kubernetes.io/worker"]',
    /^the kubelet refuses to set "node-role.kubernetes.io\/worker"/,
  ],
  [
    'a k8s.io label the kubelet refuses',
    (d) => (worker(d).labels = {'k8s.io/x': 'y'}),
    'spec.workers[0].labels["k8s.io/x"]',
    /^the kubelet refuses to set "k8s.io\/x"/,
  ],
  [
    'a taint with an unknown effect',
    (d) => (worker(d).taints = ['gpu=true:NoScheduling']),
    'spec.workers[0].taints[0]',
    '"gpu=true:NoScheduling" is not a taint: the effect "NoScheduling" is not one of NoSchedule, PreferNoSchedule, NoExecute',
  ],
  [
    'a taint without an effect',
    (d) => (worker(d).taints = ['gpu=true']),
    'spec.workers[0].taints[0]',
    /is not a taint: the effect is missing/,
  ],
  [
    'a taint with a bad key',
    (d) => (worker(d).taints = ['g pu:NoSchedule']),
    'spec.workers[0].taints[0]',
    /is not a taint: the key "g pu" is not a label key/,
  ],
  [
    'a taint with a bad value',
    (d) => (worker(d).taints = ['gpu=a b:NoSchedule']),
    'spec.workers[0].taints[0]',
    /is not a taint: the value is not a label value/,
  ],
  [
    'a taint with an empty key',
    (d) => (worker(d).taints = ['=x:NoSchedule']),
    'spec.workers[0].taints[0]',
    /is not a taint: the key is empty/,
  ],
  [
    'two taints with one key and effect',
    (d) => (worker(d).taints = ['a=1:NoSchedule', 'a=2:NoSchedule']),
    'spec.workers[0].taints[1]',
    'repeats the key and effect of item 0 (a:NoSchedule); a Node has one taint per key and effect',
  ],
  [
    'pinned (for all) and a worker without hostKey',
    (d) => {
      d.spec.ssh = {hostKeyPolicy: 'pinned'}
      worker(d, 1).hostKey = ED25519_KEY
    },
    'spec.workers[0].hostKey',
    /^is required because hostKeyPolicy is pinned \(spec.ssh.hostKeyPolicy\)/,
  ],
  [
    'pinned (per worker) without hostKey',
    (d) => (worker(d, 1).ssh = {hostKeyPolicy: 'pinned'}),
    'spec.workers[1].hostKey',
    /^is required because hostKeyPolicy is pinned \(spec.workers\[1\].ssh.hostKeyPolicy\)/,
  ],
  [
    'pinned with hostKey: null',
    (d) => Object.assign(worker(d), {ssh: {hostKeyPolicy: 'pinned'}, hostKey: null}),
    'spec.workers[0].hostKey',
    /^is required because hostKeyPolicy is pinned/,
  ],
  [
    'a host key of an unknown type',
    (d) => (worker(d).hostKey = 'ssh-foo AAAA'),
    'spec.workers[0].hostKey',
    /^"ssh-foo AAAA" is not an SSH public key: the key type "ssh-foo" is not one of ssh-ed25519/,
  ],
  [
    'a host key whose blob is another type',
    (d) => (worker(d).hostKey = ED25519_KEY.replace('ssh-ed25519', 'ssh-rsa')),
    'spec.workers[0].hostKey',
    /is not an SSH public key: its base64 part is not a valid ssh-rsa key/,
  ],
  [
    'a host key without base64',
    (d) => (worker(d).hostKey = 'ssh-ed25519'),
    'spec.workers[0].hostKey',
    '"ssh-ed25519" is not an SSH public key: expected "TYPE BASE64 [comment]"',
  ],
  [
    'an unknown service manager',
    (d) => (worker(d).service = 'systemdd'),
    'spec.workers[0].service',
    'must be one of auto, systemd, openrc, none, not "systemdd" (did you mean "systemd"?)',
  ],
  [
    'an unknown key in a worker ssh',
    (d) => (worker(d).ssh = {usr: 'x'}),
    'spec.workers[0].ssh.usr',
    'unknown key "usr" (did you mean "user"?)',
  ],
  [
    'a worker ssh port out of range',
    (d) => (worker(d).ssh = {port: -1}),
    'spec.workers[0].ssh.port',
    'must be from 1 to 65535, not -1',
  ],
]

describe('inventory schema and cross-checks', () => {
  describe('valid inventories', () => {
    for (const [what, edit] of good) {
      it(`accepts ${what}`, () => {
        const doc = minimal()
        edit(doc)
        assert.deepEqual(problemsOfDoc(doc).map(brief), [])
      })
    }
  })

  describe('invalid inventories: exactly one problem each', () => {
    for (const [what, edit, path, message] of bad) {
      it(`rejects ${what}`, () => {
        const doc = minimal()
        edit(doc)
        const problems = problemsOfDoc(doc)
        assert.equal(problems.length, 1, `expected one problem, got:\n${problems.map(brief).join('\n')}`)
        assert.equal(problems[0].path, path)
        if (typeof message === 'string') assert.equal(problems[0].message, message)
        else assert.match(problems[0].message, message)
        assert.ok(problems[0].line >= 1 && problems[0].column >= 1, 'every problem has a position')
      })
    }
  })

  it('reports every problem of a document at once, not just the first', () => {
    const doc = minimal()
    for (const [, edit] of bad.filter(([what]) =>
      /^(a wrong apiVersion|concurrency 0|a misspelt worker key|two workers with one name|an unknown sudo mode)$/.test(
        what,
      ),
    ))
      edit(doc)
    assert.deepEqual(
      problemsOfDoc(doc).map((p) => p.path),
      ['apiVersion', 'spec.workers[0].adress', 'spec.workers[1].name', 'spec.ssh.sudo', 'spec.concurrency'],
    )
  })
})

describe('inventory formats', () => {
  const cases: [FormatName, string[], string[]][] = [
    ['dns1123-label', ['a', 'w-1', '0', 'a'.repeat(63)], ['', 'A', '-a', 'a-', 'a.b', 'a_b', 'a'.repeat(64)]],
    [
      'host',
      ['10.0.0.1', '::1', '2001:db8::1', 'localhost', 'a.b-c.example', 'x1.y2'],
      ['', '10.0.0.300', '1.2.3', 'a..b', '-a.com', 'a b', `${'a'.repeat(64)}.com`, 'host.123'],
    ],
    ['ip', ['10.0.0.1', 'fd00::1', '::1'], ['w1.example', '10.0.0.300', '', 'fd00::g']],
    ['ipv4', ['0.0.0.0', '100.64.255.1', '255.255.255.255'], ['256.0.0.1', '01.2.3.4', '1.2.3', '::1', 'a.b.c.d']],
    [
      'label-key',
      ['a', 'a.b_c-d', 'example.com/x', 'a/b'],
      ['', '/a', 'a/', '-a', 'a b', 'A.com/x', `${'a'.repeat(254)}/x`, 'a/b/c'],
    ],
    ['label-value', ['', 'a', 'A-b_c.d', 'v'.repeat(63)], ['-a', 'a-', 'a b', 'v'.repeat(64)]],
    [
      'taint',
      ['a:NoSchedule', 'a=b:PreferNoSchedule', 'x.io/a=:NoExecute'],
      ['a', 'a=b', 'a:Never', ':NoSchedule', 'a=b c:NoSchedule'],
    ],
    [
      'ssh-public-key',
      [ED25519_KEY, `${ED25519_KEY} a comment`],
      ['', 'AAAA', 'ssh-ed25519 !!!', 'ssh-ed25519 AAAAC3Nz'],
    ],
    [
      'ssh-proxy',
      ['env', 'http://p:3128', 'http://10.0.0.1:80/'],
      ['ENV', 'https://p:443', 'http://p', 'http://p:3128/path', 'p:3128'],
    ],
    ['uri', ['http://m', 'https://m.example.com/k3s/'], ['m.example.com', 'ftp://m', 'file:///x']],
  ]
  for (const [format, valid, invalid] of cases) {
    it(`${format}: accepts ${valid.length} and rejects ${invalid.length} examples`, () => {
      const rule = FORMATS[format]
      for (const value of valid)
        assert.equal(rule.check(value), undefined, `${JSON.stringify(value)} should be ${rule.noun}`)
      for (const value of invalid) {
        assert.notEqual(rule.check(value), undefined, `${JSON.stringify(value)} should not be ${rule.noun}`)
        assert.ok(explainFormat(format, value).startsWith(`${JSON.stringify(value)} is not ${rule.noun}`))
      }
      if ('pattern' in rule) {
        // The editors' regular expression says the same as the check.
        const pattern = new RegExp(rule.pattern)
        for (const value of [...valid, ...invalid])
          assert.equal(
            pattern.test(value),
            rule.check(value) === undefined,
            `pattern and check disagree on ${JSON.stringify(value)}`,
          )
      }
    })
  }
})
