import {strict as assert} from 'node:assert'
import {readFile} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'

import type {V1Node} from '@kubernetes/client-node'

import {type AgentSpec, agentSpecFor} from '../../src/agent/agent-config.js'
import {parseK3sToken} from '../../src/agent/api-check.js'
import {
  agentFiles,
  agentRecord,
  installService,
  startAgent,
  uninstallAgent,
  uploadK3s,
  writeAgentFiles,
} from '../../src/agent/install.js'
import {supervisorService} from '../../src/agent/none.js'
import {type AgentService, chooseService} from '../../src/agent/service.js'
import {differingFiles} from '../../src/agent/worker-files.js'
import {WORKER_PATHS} from '../../src/agent/worker-paths.js'
import {SshConnections} from '../../src/remote/connections.js'
import type {Host} from '../../src/remote/host.js'
import {type LabHost, requireLab} from '../helpers/lab.js'
import {labWorker} from '../remote/lab-workers.js'
import {agentLeftovers} from '../helpers/worker-leftovers.js'
import {STANDIN} from '../system/cluster-fixture.js'
import {type AgentLab, createAgentLab, type LabServer} from './agent-lab.js'

/**
 * The k3s agent on a real lab host (sshd, its own PID namespace, no init system: service `none`), joining
 * the k3s stand-in's server (a test fixture, not k3s) on this machine in direct mode, through the same
 * functions the join phases call.
 */
describe('the k3s agent on a worker (lab, k3s stand-in)', function () {
  this.timeout(120_000)
  let fixture: AgentLab
  let server: LabServer
  let w1: LabHost
  let host: Host
  let service: AgentService
  let spec: AgentSpec

  before(async function () {
    requireLab(this)
    fixture = await createAgentLab({users: [{name: 'ops', sudoers: 'ALL=(ALL) NOPASSWD: ALL'}]})
    ;({
      w1,
      servers: [server],
    } = fixture)
    const worker = {...labWorker(fixture.lab, w1), labels: {zone: 'a'}, taints: ['dedicated=gpu:NoSchedule']}
    host = await fixture.connections.host(worker)
    const facts = await host.facts({})
    service = chooseService(worker.service, facts)
    // Stand-in only: its agent dials the advertised address only when told it lies on this machine.
    spec = {...agentSpecFor(worker, server.url, facts, 'lab'), environment: {K3S_STANDIN_ON_MACHINE: server.address}}
  })

  after(async () => {
    // The agent first (it lives in the host's PID namespace, which the lab removes anyway).
    if (host) await uninstallAgent(host, agentRecord(service, spec)).catch(() => undefined)
    await fixture?.destroy()
  })

  const inHost = async (script: string, ...args: string[]) => {
    const result = await w1.exec(['sh', '-c', script, 'sh', ...args])
    assert.equal(result.code, 0, result.stderr)
    return result.stdout
  }
  const supervisorPid = async () => (await readFile(w1.pathOnMachine(WORKER_PATHS.pidFile), 'utf8')).trim()
  /** The pid of the supervisor's k3s agent child, or '' (none yet; its backoff's `sleep` is not the agent). */
  const agentPid = async () =>
    (
      await inHost(
        'for c in $(cat /proc/"$1"/task/"$1"/children 2>/dev/null); do tr "\\0" " " <"/proc/$c/cmdline" 2>/dev/null | grep -q "k3s agent" && echo "$c"; done; true',
        await supervisorPid(),
      )
    ).trim()
  /** Those of `pids` that still run in the host (a zombie, left to the host's init, has an empty cmdline). */
  const living = async (...pids: string[]) =>
    (await inHost('for p; do [ -z "$(tr -d "\\0" <"/proc/$p/cmdline" 2>/dev/null)" ] || echo "$p"; done', ...pids))
      .split('\n')
      .filter(Boolean)
  const inode = (path: string) => inHost('stat -c %i -- "$1"', path)
  const node = async (name: string, ready: (n: V1Node) => boolean): Promise<V1Node> => {
    const deadline = Date.now() + 60_000
    for (;;) {
      const found = await server.api.readNode({name}).catch(() => undefined)
      if (found && ready(found)) return found
      if (Date.now() > deadline) throw new Error(`Node ${name} not as expected:\n${JSON.stringify(found)}`)
      await sleep(250)
    }
  }
  /** The stand-in agent's pod sandbox is up (it logs so once its shim is started). */
  const waitForSandbox = async () => {
    const deadline = Date.now() + 60_000
    while (!(await readFile(w1.pathOnMachine(WORKER_PATHS.supervisorLog), 'utf8')).includes('pod sandbox running')) {
      if (Date.now() > deadline) throw new Error('the stand-in agent made no pod sandbox within 60 s')
      await sleep(250)
    }
  }
  const isReady = (n: V1Node) => n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True'

  it('joins: files 0600, the binary, the none service started; the Node is Ready with its labels and taints', async () => {
    assert.equal(service.kind, 'none', 'lab hosts have no init system')
    assert.equal(await writeAgentFiles(host, spec, server.token), true)
    assert.equal(await uploadK3s(host, STANDIN), true)
    assert.equal(await installService(host, service, spec), true)
    assert.equal(await startAgent(host, service, true), 'started')

    for (const path of [WORKER_PATHS.config, WORKER_PATHS.token, WORKER_PATHS.agentEnv])
      assert.deepEqual(await host.stat(path), {...(await host.stat(path))!, mode: 0o600, uid: 0, gid: 0}, path)
    assert.equal(await readFile(w1.pathOnMachine(WORKER_PATHS.token), 'utf8'), `${server.token}\n`)

    const n = await node('w1', isReady)
    assert.equal(n.metadata?.labels?.zone, 'a')
    assert.deepEqual(
      n.spec?.taints?.map((t) => `${t.key}=${t.value}:${t.effect}`),
      ['dedicated=gpu:NoSchedule'],
    )
    assert.ok(
      n.status?.addresses?.some((a) => a.type === 'InternalIP' && a.address === w1.address),
      `node-ip ${w1.address}`,
    )
    assert.equal(await service.running(host), true)
    assert.ok((await service.recentLog(host, 20)).some((line) => /msg="k3s agent is up and running"/.test(line)))
  })

  it('a second run changes nothing: no file written, nothing uploaded, the same processes', async () => {
    const before = {
      supervisor: await supervisorPid(),
      agent: await agentPid(),
      config: await inode(WORKER_PATHS.config),
    }
    assert.notEqual(before.agent, '')
    const files = () => differingFiles(host, [...agentFiles(spec, server.token), ...service.files(spec)])
    assert.deepEqual(await files(), [], 'a dry run finds nothing to write')
    assert.equal(await writeAgentFiles(host, spec, server.token), false)
    assert.equal(await uploadK3s(host, STANDIN), false)
    assert.equal(await installService(host, service, spec), false)
    assert.equal(await startAgent(host, service, false), 'already')
    assert.deepEqual(
      {supervisor: await supervisorPid(), agent: await agentPid(), config: await inode(WORKER_PATHS.config)},
      before,
    )
  })

  it('the token is in no argv or environment on the worker, in no log there, nor in sshd’s', async () => {
    const {password} = parseK3sToken(server.token)
    const seen = await inHost('for p in /proc/[0-9]*; do cat "$p/cmdline" "$p/environ" 2>/dev/null; echo; done')
    assert.ok(seen.includes(`${WORKER_PATHS.binary}\0agent`), 'the agent was looked at')
    assert.ok(!seen.includes(password), 'the secret is in a process’s argv or environment')
    const log = await readFile(w1.pathOnMachine(WORKER_PATHS.supervisorLog), 'utf8')
    assert.match(log, /Starting k3s agent/)
    assert.ok(!log.includes(password), 'the secret is in the agent’s log')
    assert.ok(!(await w1.sshdLog()).includes(password), 'the secret is in sshd’s log')
  })

  it('a changed label rewrites the config and restarts the agent, which brings its Node up to date', async () => {
    const before = await supervisorPid()
    spec = {...spec, labels: {zone: 'b'}}
    assert.deepEqual(
      (await differingFiles(host, agentFiles(spec, server.token))).map((file) => file.path),
      [WORKER_PATHS.config],
    )
    assert.equal(await writeAgentFiles(host, spec, server.token), true)
    assert.equal(await startAgent(host, service, true), 'restarted')
    assert.notEqual(await supervisorPid(), before)
    assert.deepEqual(await living(before), [], 'the old supervisor is gone')
    await node('w1', (n) => n.metadata?.labels?.zone === 'b' && isReady(n))
  })

  it('the supervisor starts k3s again when it dies, and stays itself', async () => {
    const supervisor = await supervisorPid()
    const first = await agentPid()
    await inHost('kill -KILL "$1"', first)
    const deadline = Date.now() + 20_000
    let again = ''
    while (Date.now() < deadline && (again === '' || again === first)) {
      await sleep(200)
      again = await agentPid()
    }
    assert.ok(again !== '' && again !== first, 'a new k3s agent')
    assert.equal(await supervisorPid(), supervisor)
    assert.match(
      await readFile(w1.pathOnMachine(WORKER_PATHS.supervisorLog), 'utf8'),
      /hybrid supervisor: k3s agent exited with status 137; starting it again in 1 s/,
    )
  })

  it('a hung supervisor is killed with its agent after the grace; a pidfile left by a crash does not stop a start', async () => {
    const supervisor = await supervisorPid()
    const agent = await agentPid()
    assert.deepEqual(await living(supervisor, agent), [supervisor, agent])
    await inHost('kill -STOP "$1"', supervisor) // deaf to SIGTERM until killed
    const started = Date.now()
    assert.equal(await supervisorService({stopGraceSeconds: 2}).stop(host), true)
    assert.ok(Date.now() - started >= 2000, 'killed before the grace was over')
    assert.deepEqual(await living(supervisor, agent), [])
    assert.equal(await host.stat(WORKER_PATHS.pidFile), undefined)

    // A pidfile naming a process that is not the supervisor (the host's init): not running, and a start works.
    await host.writeFile(WORKER_PATHS.pidFile, '1\n', {mode: 0o644, sudo: true})
    assert.equal(await service.running(host), false)
    assert.equal(await startAgent(host, service, false), 'started')
    assert.notEqual(await supervisorPid(), '1')
    await node('w1', isReady)
  })

  it('uninstall from the record alone leaves what k3s-agent-uninstall.sh leaves: no shim or container, mount, cni netns, link, chain or file; a second one finds nothing', async () => {
    // What a real agent leaves running and set up when it stops (KillMode=process), made by the stand-in's
    // agent (its pod sandbox: shim and container, tmpfs, cni netns, cni0, flannel.1, chains), plus a mount
    // under the data dir and a KUBE- chain in the legacy backend (a k3s that once ran in the other mode).
    await waitForSandbox()
    await inHost(
      'set -e; mkdir -p "$1"; mount -t tmpfs tmpfs "$1"; if command -v iptables-legacy >/dev/null; then iptables-legacy -w -t nat -N KUBE-MARK-MASQ; iptables-legacy -w -t nat -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000; fi',
      `${WORKER_PATHS.dataDir}/agent/containerd/m`,
    )
    const before = await agentLeftovers(w1)
    for (const expected of [
      /^shim /,
      /^container /,
      /^mount \/var\/lib\/kubelet\/pods\//,
      /^mount \/run\/netns\/cni-/,
      /^network namespace /,
      /^link cni0$/,
      /^link flannel\.1$/,
      /^iptables-nft-save: .*KUBE-SERVICES/,
      /^iptables-nft-save: .*FLANNEL-POSTRTG/,
      /^iptables-nft-save: .*CNI-/,
      /^ip6tables-nft-save: .*KUBE-KUBELET-CANARY/,
      /^iptables-legacy-save: .*KUBE-MARK-MASQ/,
      /^\/var\/lib\/kubelet$/,
      /^\/var\/lib\/cni$/,
      /^\/run\/flannel$/,
    ])
      assert.ok(
        before.some((line) => expected.test(line)),
        `the agent's state has ${expected}: ${before.join('; ')}`,
      )

    const record = agentRecord(service, spec)
    assert.equal(await uninstallAgent(host, record), true)
    assert.deepEqual(await agentLeftovers(w1), [])
    assert.equal(await service.running(host), false)
    assert.equal(await uninstallAgent(host, record), false)
  })

  it('a login that is not root does the same through sudo: files root’s, the agent joins, uninstall leaves nothing', async () => {
    const connections = new SshConnections()
    try {
      const ops = await connections.host(labWorker(fixture.lab, w1, {user: 'ops', sudo: 'nopasswd'}))
      assert.equal((await ops.privilege()).ability, 'nopasswd')
      await server.api.deleteNode({name: 'w1'})
      assert.equal(await writeAgentFiles(ops, spec, server.token), true)
      assert.equal(await uploadK3s(ops, STANDIN), true)
      assert.equal(await installService(ops, service, spec), true)
      assert.equal(await startAgent(ops, service, true), 'started')
      assert.deepEqual(await ops.stat(WORKER_PATHS.token, {sudo: true}), {
        type: 'file',
        size: server.token.length + 1,
        mode: 0o600,
        uid: 0,
        gid: 0,
      })
      await node('w1', isReady)
      assert.equal(await uninstallAgent(ops, agentRecord(service, spec)), true)
      assert.equal(await service.running(ops), false)
      for (const path of agentRecord(service, spec).files)
        assert.equal(await ops.stat(path, {sudo: true}), undefined, path)
    } finally {
      await connections.closeAll()
    }
  })
})
