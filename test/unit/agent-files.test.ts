import {strict as assert} from 'node:assert'
import {execFile} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {parse} from 'yaml'

import {agentConfig, agentEnvFile, agentSpecFor, apiServerUrl} from '../../src/agent/agent-config.js'
import {nodeAddresses} from '../../src/agent/node-addresses.js'
import {parseK3sToken} from '../../src/agent/api-check.js'
import {agentRecord} from '../../src/agent/install.js'
import {supervisorScript} from '../../src/agent/none.js'
import {openrcScript} from '../../src/agent/openrc.js'
import {chooseService} from '../../src/agent/service.js'
import {systemdUnit} from '../../src/agent/systemd.js'
import {WORKER_PATHS} from '../../src/agent/worker-paths.js'
import type {WorkerSpec} from '../../src/inventory/model.js'
import {hasTool, isRoot, skipUnless} from '../helpers/requires.js'

const run = promisify(execFile)

const worker = (over: Partial<WorkerSpec> = {}): WorkerSpec => ({
  name: 'w1',
  address: '10.0.0.7',
  ssh: {} as WorkerSpec['ssh'],
  labels: {zone: 'a', 'hybrid.dev/pool': 'gpu'},
  taints: ['dedicated=gpu:NoSchedule'],
  hostKey: null,
  service: 'auto',
  ...over,
})

/** Facts of a worker whose interfaces carry `addresses` (besides loopback). */
const on = (...addresses: string[]) => ({
  interfaceAddresses: [
    {interface: 'lo', address: '127.0.0.1'},
    ...addresses.map((address) => ({interface: 'eth0', address})),
  ],
})

describe('agent files on a worker', () => {
  describe('config.yaml', () => {
    it('the server URL: the advertised address and port, IPv6 in brackets', () => {
      assert.equal(apiServerUrl('100.64.255.1', 6443), 'https://100.64.255.1:6443')
      assert.equal(apiServerUrl('fd00::1', 6443), 'https://[fd00::1]:6443')
    })

    it('round-trips: every setting comes back as k3s reads it, the token only as a file', () => {
      const text = agentConfig(agentSpecFor(worker(), apiServerUrl('100.64.255.1', 6443), on('10.0.0.7'), 'lab'))
      assert.deepEqual(parse(text), {
        server: 'https://100.64.255.1:6443',
        'token-file': '/etc/rancher/k3s/token',
        'data-dir': '/var/lib/rancher/k3s',
        'node-name': 'w1',
        'node-ip': '10.0.0.7',
        'node-label': ['zone=a', 'hybrid.dev/pool=gpu', 'hybrid.dev/worker=lab'],
        'node-taint': ['dedicated=gpu:NoSchedule'],
      })
    })

    it('leaves out node-ip for a host name and empty lists; keeps odd values as strings', () => {
      const spec = {
        ...agentSpecFor(
          worker({address: 'w1.example', labels: {n: '0644'}, taints: []}),
          'https://x:1',
          on('10.0.0.7'),
          'lab',
        ),
      }
      const config = parse(agentConfig({...spec, dataDir: '/srv/k3s'}))
      assert.equal(config['node-ip'], undefined)
      assert.equal(config['node-external-ip'], undefined)
      assert.equal(config['node-taint'], undefined)
      assert.deepEqual(config['node-label'], ['n=0644', 'hybrid.dev/worker=lab'])
      assert.equal(config['data-dir'], '/srv/k3s')
    })

    it('an address the worker does not have (NAT, a forwarded port) is node-external-ip, and k3s picks node-ip', () => {
      const config = parse(
        agentConfig(agentSpecFor(worker({address: '203.0.113.9'}), 'https://x:1', on('10.0.0.7'), 'lab')),
      )
      assert.equal(config['node-ip'], undefined)
      assert.equal(config['node-external-ip'], '203.0.113.9')
      const note = nodeAddresses(worker({address: '203.0.113.9'}), on('10.0.0.7')).note
      assert.match(note ?? '', /^w1: 203\.0\.113\.9 is not an address of its interfaces .*becomes node-external-ip/)
    })

    it('internalAddress and externalAddress override the choice; a DNS name is never node-external-ip', () => {
      const both = worker({address: '203.0.113.9', internalAddress: '10.0.0.7', externalAddress: '198.51.100.1'})
      assert.deepEqual(nodeAddresses(both, on('10.0.0.7')), {nodeIp: '10.0.0.7', nodeExternalIp: '198.51.100.1'})
      const internalOnly = worker({address: '203.0.113.9', internalAddress: '10.0.0.7'})
      assert.deepEqual(nodeAddresses(internalOnly, on('10.0.0.7')), {nodeIp: '10.0.0.7', nodeExternalIp: '203.0.113.9'})
      const named = nodeAddresses(worker({address: 'w1.example'}), on('10.0.0.7'))
      assert.equal(named.nodeIp, undefined)
      assert.equal(named.nodeExternalIp, undefined)
      assert.match(named.note ?? '', /w1\.example is a DNS name, which is no valid node-external-ip/)
      // Interfaces that could not be listed: nothing is guessed.
      const unknown = nodeAddresses(worker(), {interfaceAddresses: null})
      assert.deepEqual([unknown.nodeIp, unknown.nodeExternalIp], [undefined, undefined])
      assert.match(unknown.note ?? '', /could not be listed/)
    })

    it('env files: quoted values; a quote, a line break or a bad name is refused with a sentence', () => {
      assert.match(
        agentEnvFile({HTTPS_PROXY: 'http://p:3128', NO_PROXY: '10.0.0.0/8,.local'}),
        /^HTTPS_PROXY='http:\/\/p:3128'\nNO_PROXY='10.0.0.0\/8,.local'$/m,
      )
      assert.throws(() => agentEnvFile({A: "it's"}), /the value of A contains a quote or a line break/)
      assert.throws(() => agentEnvFile({'A-B': 'x'}), /A-B is not an environment variable name/)
    })
  })

  describe('k3s tokens', () => {
    const hash = 'ab'.repeat(32)
    it('splits the secure form, the user-less form and a bare secret', () => {
      assert.deepEqual(parseK3sToken(`K10${hash}::server:s3cr:et`), {caHash: hash, password: 's3cr:et'})
      assert.deepEqual(parseK3sToken(`K10${hash.toUpperCase()}::pw\n`), {caHash: hash, password: 'pw'})
      assert.deepEqual(parseK3sToken('plain-secret'), {password: 'plain-secret'})
    })
  })

  describe('services', () => {
    it('auto follows the init system; a setting wins over it', () => {
      assert.equal(chooseService('auto', {init: {system: 'openrc', pid1: 'init'}}).kind, 'openrc')
      assert.equal(chooseService('auto', {init: {system: 'none', pid1: null}}).kind, 'none')
      assert.equal(chooseService('none', {init: {system: 'systemd', pid1: 'systemd'}}).kind, 'none')
    })

    it("systemd: k3s's own agent unit (Type=exec, as k3s's installer writes it for agents), running k3s agent with no argument", () => {
      const unit = systemdUnit()
      for (const line of [
        'Type=exec',
        'KillMode=process',
        'Delegate=yes',
        'LimitNOFILE=1048576',
        'Restart=always',
        'EnvironmentFile=-/etc/systemd/system/k3s-agent.service.env',
        'ExecStart=/usr/local/bin/k3s agent',
        'WantedBy=multi-user.target',
      ])
        assert.ok(unit.split('\n').includes(line), `${line} in the unit`)
    })

    it('systemd: systemd-analyze verify finds nothing to say about the unit', async function () {
      skipUnless(this, hasTool('systemd-analyze'), 'systemd-analyze is not installed (apt-get install systemd)')
      skipUnless(this, isRoot() && hasTool('unshare'), 'needs root and unshare for a private /usr/local/bin')
      const dir = await mkdtemp(join(tmpdir(), 'hybrid-unit-'))
      try {
        const unit = join(dir, 'k3s-agent.service')
        await writeFile(unit, systemdUnit())
        // verify checks that ExecStart exists: a placeholder k3s in a private /usr/local/bin.
        const {stdout, stderr} = await run('unshare', [
          '-m',
          '--propagation',
          'private',
          'sh',
          '-c',
          'set -e; mount -t tmpfs tmpfs /usr/local/bin; printf "#!/bin/sh\\n" >/usr/local/bin/k3s; chmod 755 /usr/local/bin/k3s; systemd-analyze verify "$1" 2>&1',
          'sh',
          unit,
        ])
        assert.equal(stdout + stderr, '')
        // and it would say something about a broken one
        await writeFile(unit, systemdUnit().replace('Type=exec', 'Type=exce'))
        const broken = await run('unshare', [
          '-m',
          '--propagation',
          'private',
          'sh',
          '-c',
          'mount -t tmpfs tmpfs /usr/local/bin; : >/usr/local/bin/k3s; chmod 755 /usr/local/bin/k3s; systemd-analyze verify "$1" 2>&1',
          'sh',
          unit,
        ])
        assert.match(broken.stdout, /Failed to parse service type/)
      } finally {
        await rm(dir, {recursive: true, force: true})
      }
    })

    it("openrc: k3s's own script under supervise-daemon, a shell sh -n accepts", async () => {
      const script = openrcScript()
      assert.match(script, /^#!\/sbin\/openrc-run\n/)
      assert.match(script, /^supervisor=supervise-daemon$/m)
      assert.match(script, /^command="\/usr\/local\/bin\/k3s"$/m)
      assert.match(script, /^command_args="agent >>\/var\/log\/k3s-agent.log 2>&1"$/m)
      assert.match(script, /^pidfile="\/run\/k3s-agent.pid"$/m)
      assert.match(script, /\. \/etc\/rancher\/k3s\/k3s-agent.env; fi$/m)
      await run('sh', ['-n', '-c', script])
    })

    it('none: the supervisor is POSIX sh (dash -n) with the pidfile and k3s agent', async () => {
      const script = supervisorScript()
      await run(hasTool('dash') ? 'dash' : 'sh', ['-n', '-c', script])
      assert.match(script, /^pidfile=\/run\/k3s-agent.pid$/m)
      assert.match(script, /^ {2}\/usr\/local\/bin\/k3s agent <\/dev\/null &$/m)
    })

    it('the record lists every path, so uninstall needs nothing else', () => {
      const record = agentRecord(chooseService('none', {init: {system: 'none', pid1: null}}), {})
      assert.equal(record.service, 'none')
      for (const path of [
        WORKER_PATHS.config,
        WORKER_PATHS.token,
        WORKER_PATHS.binary,
        WORKER_PATHS.supervisor,
        WORKER_PATHS.pidFile,
      ])
        assert.ok(record.files.includes(path), path)
      assert.deepEqual(record.directories, ['/var/lib/rancher/k3s', '/run/k3s', '/var/lib/rancher/hybrid'])
    })
  })
})
