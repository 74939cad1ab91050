import {strict as assert} from 'node:assert'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {
  createLab,
  type Lab,
  labLeftovers,
  labRecords,
  type LabHost,
  type LabHostSpec,
  requireInitHosts,
  ticksNow,
} from '../helpers/lab.js'
import {agentPid, leftOn} from '../helpers/worker-leftovers.js'
import {writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort, nodes, STANDIN, waitFor} from '../system/cluster-fixture.js'
import {hybrid, until} from './scene.js'

/**
 * hybrid's systemd service on workers that boot systemd as PID 1 (docs/architecture.md, "Lab worker hosts"
 * and "Workers"): two lab hosts made by scripts/lab/init-hosts.sh (systemd-nspawn on a cached Debian root,
 * sshd a systemd service), joined in tunnel mode with the k3s stand-in as k3s, whose agent, like k3s's,
 * tells systemd it is ready only once it has joined. The unit is k3s's own for agents (Type=exec): what
 * systemctl reports is what hybrid reads, also for an agent still in bootstrap.
 */

interface Scene {
  readonly dir: string
  readonly lab: Lab
  readonly inventory: string
  readonly apiPort: number
  readonly env: NodeJS.ProcessEnv
  readonly kubeconfig: string
  labels: Record<string, string>
}

const UNIT = 'k3s-agent.service'

async function writeInventory(scene: Pick<Scene, 'dir' | 'lab' | 'apiPort' | 'labels'>): Promise<string> {
  return writeLabInventory(
    scene.dir,
    scene.lab,
    scene.lab.hosts.map((host) => (host.name === 's1' ? {host, labels: scene.labels} : {host})),
    {
      name: 'booted',
      k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
      controlPlane: {agent: false, apiPort: scene.apiPort},
    },
  )
}

/** Lab hosts of these specs, and the inventory joining them (s1 with the scene's labels). */
async function makeScene(hosts: LabHostSpec[]): Promise<Scene> {
  const dir = await mkdtemp(join(tmpdir(), 'hybrid-booted-'))
  const lab = await createLab({hosts})
  const apiPort = await freePort()
  const labels = {'hybrid.dev/pool': 'a'}
  return {
    dir,
    lab,
    inventory: await writeInventory({dir, lab, apiPort, labels}),
    apiPort,
    labels,
    env: fixtureEnv(dir, {HYBRID_NODE_READY_TIMEOUT_SECONDS: '60'}),
    kubeconfig: join(dir, 'state', 'clusters', 'booted', 'kubeconfig'),
  }
}

/** Whatever the tests left: the cluster and its workers' installs, then the lab, by their records. */
async function endScene(scene: Scene | undefined): Promise<void> {
  if (!scene) return
  await hybrid(scene, ['down', '--uninstall-workers', '--inventory', scene.inventory]).catch(() => undefined)
  await scene.lab.destroy()
  await rm(scene.dir, {recursive: true, force: true})
}

/** What systemd says of a unit: `systemctl show` properties. */
async function show(host: LabHost, unit: string): Promise<Record<string, string>> {
  const r = await host.exec(['systemctl', 'show', '-p', 'ActiveState,SubState,MainPID,UnitFileState,LoadState', unit])
  return Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((line) => line.split('=', 2) as [string, string]),
  )
}

/** `systemctl is-active`: its word and its exit code. */
async function isActive(host: LabHost): Promise<string> {
  const r = await host.exec(['systemctl', 'is-active', UNIT])
  return `${r.stdout.trim()} (exit ${r.code})`
}

async function failedUnits(host: LabHost): Promise<string> {
  return (await host.exec(['systemctl', '--failed', '--no-legend', '--plain'])).stdout.trim()
}

/** The agent's own log, as systemd's journal has it. */
async function journal(host: LabHost): Promise<string> {
  return (await host.exec(['journalctl', '--unit', UNIT, '--no-pager', '--output', 'cat'])).stdout
}

/**
 * Put the agent in the state of a worker whose cluster was made again: its token's CA hash matches no
 * longer, so it stays in bootstrap (never joins, so never READY=1), retrying. Restarted by systemd itself.
 */
async function strandAgent(host: LabHost): Promise<void> {
  const tokenFile = host.pathOnMachine('/etc/rancher/k3s/token')
  const token = (await readFile(tokenFile, 'utf8')).trim()
  assert.match(token, /^K10[0-9a-f]{64}::/, 'the token has a CA hash')
  const stale = token.replace(/^K10[0-9a-f]{64}/, `K10${'0'.repeat(64)}`)
  await writeFile(tokenFile, `${stale}\n`)
  const before = (await journal(host)).split('\n').length
  // --no-block: systemctl would otherwise wait for the agent to be started, as its unit defines it.
  assert.equal((await host.exec(['systemctl', 'restart', '--no-block', UNIT])).code, 0)
  await waitFor('the agent refuses the cluster CA', async () =>
    (await journal(host))
      .split('\n')
      .slice(before - 1)
      .some((line) => line.includes('token CA hash does not match'))
      ? true
      : undefined,
  )
}

describe('workers that boot systemd (lab init hosts, stand-in k3s, real systemd and sshd)', function () {
  this.timeout(600_000)
  let scene: Scene | undefined
  let records: string[][] = []

  before(async function () {
    requireInitHosts(this)
    scene = await makeScene([
      {name: 's1', init: 'systemd'},
      {name: 's2', init: 'systemd'},
    ])
  })

  after(() => endScene(scene))

  it('the hosts boot systemd as PID 1 with sshd as its service, and nothing failed', async () => {
    for (const host of scene!.lab.hosts) {
      assert.equal((await host.exec(['cat', '/proc/1/comm'])).stdout.trim(), 'systemd')
      assert.equal((await host.exec(['systemctl', 'is-active', 'ssh.service'])).stdout.trim(), 'active')
      assert.equal(await failedUnits(host), '', `no failed unit on ${host.name}`)
    }
  })

  it('joins both: k3s-agent.service enabled and active, run by systemd, every Node Ready', async () => {
    const s = scene!
    const up = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`)
    const seen = await nodes(s)
    for (const host of s.lab.hosts) {
      assert.equal(seen.get(host.name)?.ready, true, `${host.name} is Ready`)
      assert.equal(await isActive(host), 'active (exit 0)', `systemctl is-active on ${host.name}`)
      const unit = await show(host, UNIT)
      assert.equal(unit.UnitFileState, 'enabled')
      assert.equal(Number(unit.MainPID), await agentPid(host), 'the agent is the unit’s main process')
      assert.equal(await failedUnits(host), '')
    }
    assert.equal(seen.get('s1')?.labels['hybrid.dev/pool'], 'a')
  })

  it('a changed label and up again restart s1’s agent (a new MainPID) and nothing else', async () => {
    const s = scene!
    const [s1, s2] = [s.lab.host('s1'), s.lab.host('s2')]
    const before = {
      s1: await show(s1, UNIT),
      s2: await show(s2, UNIT),
      sshd: await show(s1, 'ssh.service'),
    }
    s.labels['hybrid.dev/pool'] = 'b'
    await writeInventory(s)
    const up = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`)
    const after = {s1: await show(s1, UNIT), s2: await show(s2, UNIT), sshd: await show(s1, 'ssh.service')}
    assert.notEqual(after.s1.MainPID, before.s1.MainPID, 's1’s agent was restarted')
    assert.equal(after.s1.ActiveState, 'active')
    assert.equal(after.s2.MainPID, before.s2.MainPID, 's2’s agent was not')
    assert.equal(after.sshd.MainPID, before.sshd.MainPID, 's1’s sshd was not restarted')
    assert.equal((await nodes(s)).get('s1')?.labels['hybrid.dev/pool'], 'b')
  })

  it('an agent stuck in bootstrap (CA hash no longer matches) runs as far as hybrid can tell; the next up rewrites its token and restarts it', async () => {
    const s = scene!
    const s1 = s.lab.host('s1')
    await strandAgent(s1)
    const stuck = await show(s1, UNIT)
    assert.ok(Number(stuck.MainPID) > 0, 'its process runs')
    const list = JSON.parse((await hybrid(s, ['workers', 'list', '--inventory', s.inventory, '--json'])).stdout) as {
      workers: Array<{name: string; agent: {state: string} | null}>
    }
    assert.equal(list.workers.find((w) => w.name === 's1')?.agent?.state, 'running', 'workers list: the agent runs')

    const up = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`)
    const after = await show(s1, UNIT)
    assert.notEqual(after.MainPID, stuck.MainPID, 'up restarted the stuck agent, so it reads the right token')
    assert.equal(await isActive(s1), 'active (exit 0)')
    await waitFor('s1’s agent joins again', async () => {
      const lines = (await journal(s1)).split('\n').filter((l) => /up and running|CA hash does not match/.test(l))
      return lines.at(-1)?.includes('up and running') ? true : undefined
    })
    // Its first heartbeat follows registration by a few seconds; meanwhile the Node may show the silence.
    await waitFor('s1’s Node is Ready', async () => ((await nodes(s)).get('s1')?.ready ? true : undefined))
  })

  it('workers remove --keep-installed stops an agent stuck in bootstrap and keeps its unit', async () => {
    const s = scene!
    const s1 = s.lab.host('s1')
    await strandAgent(s1)
    const removed = await hybrid(s, ['workers', 'remove', 's1', '--keep-installed', '--inventory', s.inventory])
    assert.equal(removed.code, 0, `${removed.stdout}\n${removed.stderr}`)
    assert.equal(await isActive(s1), 'inactive (exit 3)', 'systemd says the agent is stopped')
    assert.equal(await agentPid(s1), undefined, 'no agent process')
    assert.equal((await show(s1, UNIT)).UnitFileState, 'enabled', 'the unit stays installed')
    assert.equal(await failedUnits(s1), '')
  })

  it('workers remove s2 leaves no unit, no enabled link, no process, and a clean systemctl', async () => {
    const s = scene!
    const s2 = s.lab.host('s2')
    const removed = await hybrid(s, ['workers', 'remove', 's2', '--inventory', s.inventory])
    assert.equal(removed.code, 0, `${removed.stdout}\n${removed.stderr}`)
    for (const path of [
      '/etc/systemd/system/k3s-agent.service',
      '/etc/systemd/system/k3s-agent.service.env',
      '/etc/systemd/system/multi-user.target.wants/k3s-agent.service',
    ])
      assert.notEqual((await s2.exec(['test', '-e', path])).code, 0, `${path} is gone`)
    assert.deepEqual(await leftOn(s2, s.apiPort), [])
    const unit = await show(s2, UNIT)
    assert.equal(unit.LoadState, 'not-found', 'systemd knows no k3s-agent unit')
    const status = await s2.exec(['systemctl', 'status', UNIT])
    assert.equal(status.code, 4, `systemctl status: no such unit\n${status.stdout}${status.stderr}`)
    assert.equal(await failedUnits(s2), '')
    assert.equal((await s2.exec(['systemctl', 'is-system-running'])).stdout.trim(), 'running')
  })

  it('the lab takes the hosts down by their record: no container, overlay, cgroup or namespace stays', async () => {
    const s = scene!
    await hybrid(s, ['down', '--uninstall-workers', '--inventory', s.inventory])
    records = await labRecords(s.lab.dir)
    assert.ok(
      records.some(([, kind]) => kind === 'mount') && records.some(([, kind]) => kind === 'cgroup'),
      'the record names each host’s overlay and cgroup',
    )
    const downAt = ticksNow()
    await s.lab.destroy()
    // A container's processes end after its PID 1 is killed; on a loaded machine that has been seen to
    // take longer than workers.sh waits. Bounded: a minute, then whatever is left fails the test.
    const left = await until(
      'the hosts’ processes to end',
      async () => {
        const now = await labLeftovers(records, downAt)
        return now.every((what) => what.endsWith('(still running)')) && now.length > 0 ? undefined : now
      },
      60_000,
    ).catch(async () => labLeftovers(records, downAt))
    assert.deepEqual(left, [])
  })
})

describe('a worker that boots OpenRC (lab init host, stand-in k3s, real OpenRC and sshd)', function () {
  this.timeout(600_000)
  let scene: Scene | undefined

  /** The agent's pid as OpenRC's supervise-daemon wrote it. */
  const supervised = async (host: LabHost) => (await host.exec(['cat', '/run/k3s-agent.pid'])).stdout.trim()

  before(async function () {
    requireInitHosts(this)
    scene = await makeScene([{name: 's1', init: 'openrc'}])
  })

  after(() => endScene(scene))

  it('joins it with the OpenRC script, restarts only the agent on a changed label, and workers remove leaves nothing', async () => {
    const s = scene!
    const s1 = s.lab.host('s1')
    assert.equal((await s1.exec(['cat', '/proc/1/comm'])).stdout.trim(), 'init')
    assert.equal((await s1.exec(['test', '-e', '/run/openrc/softlevel'])).code, 0, 'OpenRC runs')

    const up = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`)
    assert.equal((await nodes(s)).get('s1')?.ready, true)
    assert.equal((await s1.exec(['rc-service', 'k3s-agent', 'status'])).code, 0, 'rc-service says it runs')
    assert.equal((await s1.exec(['test', '-e', '/etc/runlevels/default/k3s-agent'])).code, 0, 'in the default runlevel')
    const before = {agent: await agentPid(s1), sshd: (await s1.exec(['cat', '/run/sshd.pid'])).stdout.trim()}
    assert.ok(before.agent && (await supervised(s1)) !== '', 'supervise-daemon keeps the agent')

    s.labels['hybrid.dev/pool'] = 'b'
    await writeInventory(s)
    const again = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`)
    assert.notEqual(await agentPid(s1), before.agent, 'the agent was restarted')
    assert.equal((await s1.exec(['cat', '/run/sshd.pid'])).stdout.trim(), before.sshd, 'sshd was not')
    assert.equal((await nodes(s)).get('s1')?.labels['hybrid.dev/pool'], 'b')

    const removed = await hybrid(s, ['workers', 'remove', 's1', '--inventory', s.inventory])
    assert.equal(removed.code, 0, `${removed.stdout}\n${removed.stderr}`)
    for (const path of ['/etc/init.d/k3s-agent', '/etc/runlevels/default/k3s-agent'])
      assert.notEqual((await s1.exec(['test', '-e', path])).code, 0, `${path} is gone`)
    assert.deepEqual(await leftOn(s1, s.apiPort), [])
    assert.equal((await s1.exec(['rc-status', '--crashed'])).stdout.trim(), '', 'no crashed service')
  })
})
