import {strict as assert} from 'node:assert'
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {isDeepStrictEqual} from 'node:util'

import {recordExecsOf, runRecorded} from '../helpers/exec-recorder.js'
import {createLab, type Lab, type LabHost, labRecords, requireLab} from '../helpers/lab.js'
import {requireTool} from '../helpers/requires.js'
import {hostSnapshot, machineSnapshot} from '../helpers/system-snapshot.js'
import {ADVERTISED as ADDRESS, agentPid, leftOn} from '../helpers/worker-leftovers.js'
import {hostDigest, writeLabInventory} from '../remote/lab-workers.js'
import {WORKER_PATHS} from '../../src/agent/worker-paths.js'
import {fixtureEnv, freePort, kubectl, nodes, RUN_JS, STANDIN} from '../system/cluster-fixture.js'
import {events, hybrid, lastJson, until} from './scene.js'

/**
 * Joining workers end to end (docs/architecture.md, "Workers" and "Tunnels"): `hybrid up` brings up the
 * k3s stand-in (an agentless server on this machine, named as a stand-in for k3s) and joins three real
 * lab hosts over SSH in tunnel mode; a fourth, whose host key is unknown under strict, is refused while
 * the others join. Then: a second `up` changes nothing, a killed tunnel comes back by itself, `workers
 * remove` leaves nothing on its worker, and `down` takes the rest out.
 */

interface Scene {
  readonly dir: string
  readonly lab: Lab
  readonly inventory: string
  readonly apiPort: number
  readonly env: NodeJS.ProcessEnv
  readonly kubeconfig: string
}

/** Is there a state for the cluster? */
async function readStateDir(scene: Scene): Promise<boolean> {
  return stat(join(scene.env.HYBRID_STATE_DIR!, 'clusters', 'joined', 'state.json')).then(
    () => true,
    () => false,
  )
}

/** What answers at the advertised address inside a worker: k3s's /ping, and /readyz's HTTP status. */
async function apiInside(host: LabHost, apiPort: number): Promise<{ping: string; readyz: string}> {
  const base = `https://${ADDRESS}:${apiPort}`
  const ping = await host.exec(['curl', '-sk', '--max-time', '5', `${base}/ping`])
  const readyz = await host.exec([
    'curl',
    '-sk',
    '--max-time',
    '5',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    `${base}/readyz`,
  ])
  return {ping: ping.stdout.trim(), readyz: readyz.stdout.trim()}
}

/** Every process's argv inside a worker (its own PID namespace), as text. */
async function argvsInside(host: LabHost): Promise<string> {
  const r = await host.exec(['sh', '-c', 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " <"$f"; echo; done'])
  return r.stdout
}

/**
 * The worker's pods get their network: cni0 holds the gateway of its Node's new range (spec.podCIDR), and
 * the agent's log has no "cni0 already has an IP address different from …" (the bridge plugin's error when
 * a cni0 of an earlier join is left with the old range's gateway).
 */
async function podNetworkOn(s: Scene, host: LabHost): Promise<void> {
  const cidr = (await kubectl(s, ['get', 'node', host.name, '-o', 'jsonpath={.spec.podCIDR}'])).trim()
  const gateway = cidr.replace(/\.0\/(\d+)$/, '.1/$1')
  const log = () => readFile(host.pathOnMachine('/var/lib/rancher/hybrid/k3s-agent.log'), 'utf8').catch(() => '')
  await until(
    `cni0 on ${host.name} holds ${gateway}`,
    async () => {
      const bridge = (await host.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', 'cni0'])).stdout
      const failed = (await log()).split('\n').find((line) => line.includes('already has an IP address different'))
      if (failed) throw new Error(`${host.name}'s pods get no network: ${failed}`)
      return bridge.includes(` ${gateway} `) ? true : undefined
    },
    30_000,
  )
}

describe('joining workers over SSH, tunnel mode (stand-in k3s, real lab sshd)', function () {
  this.timeout(600_000)
  let scene: Scene | undefined

  before(async function () {
    requireLab(this)
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-join-'))
    const lab = await createLab({hosts: [{name: 'w1'}, {name: 'w2'}, {name: 'w3'}, {name: 'w4'}]})
    // w4's key is not in this known_hosts: strict refuses it with its fingerprint.
    const knownHosts = join(dir, 'known_hosts')
    const w4 = lab.host('w4')
    const lines = (await readFile(lab.knownHosts, 'utf8')).split('\n').filter((l) => l && !l.includes(w4.address))
    await writeFile(knownHosts, `${lines.join('\n')}\n`)
    const apiPort = await freePort()
    const inventory = await writeLabInventory(
      dir,
      lab,
      lab.hosts.map((host) =>
        host.name === 'w1' ? {host, labels: {'hybrid.dev/pool': 'gpu'}, taints: ['dedicated=gpu:NoSchedule']} : {host},
      ),
      {
        name: 'joined',
        // The join runs under strace (every syscall of sshd's sessions and of k3s stops the tracee): a
        // handshake then takes seconds on a loaded machine.
        ssh: {connectTimeoutSeconds: 20},
        knownHosts,
        k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
        controlPlane: {agent: false, apiPort},
      },
    )
    const stateDir = join(dir, 'state')
    scene = {
      dir,
      lab,
      inventory,
      apiPort,
      env: fixtureEnv(dir, {HYBRID_NODE_READY_TIMEOUT_SECONDS: '180'}),
      kubeconfig: join(stateDir, 'clusters', 'joined', 'kubeconfig'),
    }
  })

  after(async () => {
    if (!scene) return
    await hybrid(scene, ['down', '--uninstall-workers', '--inventory', scene.inventory]).catch(() => undefined)
    await scene.lab.destroy()
    await rm(scene.dir, {recursive: true, force: true})
  })

  it('under --dry-run before the first up: plans every worker’s changes, changes nothing on any', async () => {
    const s = scene!
    const before = await Promise.all(s.lab.hosts.map((h) => hostDigest(h)))
    const seen = async () => ({
      workers: await Promise.all(s.lab.hosts.map(async (h) => ({host: h.name, ...(await hostSnapshot(h))}))),
      machine: await machineSnapshot(s.lab, [s.dir]),
    })
    const systemBefore = await seen()
    const dry = await hybrid(s, ['up', '--inventory', s.inventory, '--dry-run', '--json'])
    assert.equal(dry.code, 3, dry.stderr)
    const doc = lastJson(dry.stdout) as {outcome: string; plan: {changes: Array<{host: string; sentence: string}>}}
    assert.equal(doc.outcome, 'dry-run')
    const w1 = doc.plan.changes.filter((c) => c.host === 'w1').map((c) => String(c.sentence))
    for (const expected of [
      /sshd_config\.d\/hybrid-tunnel\.conf/,
      /100\.64\.255\.1\/32/,
      /^upload k3s/,
      /config\.yaml and .*token/,
      /service/,
      /start the k3s agent/,
    ])
      assert.ok(
        w1.some((c) => expected.test(c)),
        `w1's plan has ${expected}: ${w1.join('; ')}`,
      )
    assert.deepEqual(await Promise.all(s.lab.hosts.map((h) => hostDigest(h))), before, 'nothing changed on the workers')
    // Addresses, links, processes and sshd's pid, on every worker and on this machine: the same. The dry
    // run's SSH sessions end as it exits; sshd reaps them a moment later, so a few tries are allowed.
    let systemAfter = await seen()
    for (let i = 0; i < 20 && !isDeepStrictEqual(systemAfter, systemBefore); i++) {
      await new Promise((resolve) => setTimeout(resolve, 250))
      systemAfter = await seen()
    }
    assert.deepEqual(systemAfter, systemBefore, 'no address, link, process or sshd changed on a worker or here')
    assert.ok(
      systemBefore.workers.every((w) => /^\d+$/.test(w.sshd) && w.processes.length > 0 && w.links.length > 0),
      'the snapshots saw each worker',
    )
    assert.equal(await readStateDir(s), false, 'no cluster state was made')
  })

  it('joins three workers, refuses the one with an unknown host key (exit 3), and keeps the token out of argv and logs', async function () {
    requireTool(this, 'strace')
    const s = scene!
    // Every program started during the join, with its argv: on each worker (everything its sshd starts,
    // the agent included) and on this machine (up and everything it starts, the supervisor and k3s too).
    const sshds = (await labRecords(s.lab.dir)).filter((r) => r[1] === 'pid' && r[4] === 'sshd')
    const onWorkers = await recordExecsOf(
      sshds.map((r) => Number(r[2])),
      join(s.dir, 'workers.strace'),
    )
    const logins = async () => ((await s.lab.host('w1').sshdLog()).match(/Accepted publickey for/g) ?? []).length
    const loginsBefore = await logins()
    let up: Awaited<ReturnType<typeof runRecorded>>
    try {
      up = await runRecorded(
        s.dir,
        process.execPath,
        [RUN_JS, 'up', '--inventory', s.inventory, '--detach'],
        s.env,
        420_000,
      )
    } catch (error) {
      await onWorkers.stop()
      throw error
    }
    const [workerExecs, machineExecs] = [await onWorkers.stop(), await up.recorder.stop()]
    assert.equal(up.code, 3, `${up.stdout}\n${up.stderr}`)
    // One login for *check the workers* and the join (the join keeps the check's connection), one for the tunnel.
    assert.equal((await logins()) - loginsBefore, 2, 'w1 was logged into twice: the check and join, and the tunnel')
    assert.match(up.stderr, /w4.*SHA256:/, 'the refused worker is named with its key fingerprint')
    // Refused before the control plane started, by the check of every worker.
    const refused = up.stderr.search(/check the worker failed .*: w4: the host key/)
    const started = up.stderr.indexOf('==> start the k3s server')
    assert.ok(refused >= 0 && started > refused, `w4 failed its check before the k3s server started:\n${up.stderr}`)
    assert.match(up.stdout, /cluster joined is up/)
    // The summary: which k3s runs (the stand-in says so in its --version), every Node, the time taken.
    assert.match(up.stdout, /^k3s: k3s version v1\.34\.1\+k3s1 \(stand-in\)/m)
    for (const name of ['w1', 'w2', 'w3']) assert.match(up.stdout, new RegExp(`^${name} +Ready +v1\\.34`, 'm'))
    assert.match(up.stdout, /^took (\d+m)?[\d.]+s: .*join the workers (\d+m)?[\d.]+s/m)
    const seen = await nodes(s)
    for (const name of ['w1', 'w2', 'w3']) assert.equal(seen.get(name)?.ready, true, `${name} is Ready`)
    assert.equal(seen.has('w4'), false)
    assert.equal(seen.get('w1')?.labels['hybrid.dev/pool'], 'gpu')
    assert.deepEqual(seen.get('w1')?.taints, ['dedicated=gpu:NoSchedule'])

    const w1 = s.lab.host('w1')
    const inside = await apiInside(w1, s.apiPort)
    assert.equal(inside.ping, 'pong', 'k3s answers at the advertised address inside the worker')
    assert.match(inside.readyz, /^(200|401)$/)

    const token = (await readFile(join(s.dir, 'data', 'server', 'token'), 'utf8')).trim()
    const secret = token.split('::server:')[1]
    assert.ok(secret && secret.length > 8)
    assert.equal(sshds.length, s.lab.hosts.length, 'every worker’s sshd was traced')
    const agents = workerExecs.filter((line) => /execve\("\/usr\/local\/bin\/k3s", \[[^\]]*"agent"/.test(line))
    assert.ok(agents.length >= 3, `the recording saw the three agents start:\n${workerExecs.join('\n')}`)
    assert.ok(
      machineExecs.some((line) => /k3s-standin\/k3s", \[[^\]]*"server"/.test(line)),
      `the recording saw k3s start here:\n${machineExecs.join('\n')}`,
    )
    for (const [where, lines] of [
      ['on a worker', workerExecs],
      ['on this machine', machineExecs],
    ] as const)
      assert.deepEqual(
        lines.filter((line) => line.includes(token) || line.includes(secret)),
        [],
        `no program started ${where} during the join had the token in its argv`,
      )
    for (const host of s.lab.hosts)
      assert.ok(!(await argvsInside(host)).includes(secret), `no argv in ${host.name} holds the token`)
    const logs = [
      join(s.env.HYBRID_STATE_DIR!, 'logs', 'hybrid.log'),
      join(s.env.HYBRID_STATE_DIR!, 'clusters', 'joined', 'supervisor.log'),
    ]
    for (const log of logs)
      assert.ok(!(await readFile(log, 'utf8').catch(() => '')).includes(secret), `${log} has no token`)
    assert.equal((await stat(w1.pathOnMachine('/etc/rancher/k3s/token'))).mode & 0o777, 0o600)
    assert.equal((await stat(w1.pathOnMachine('/etc/rancher/k3s/config.yaml'))).mode & 0o777, 0o600)
  })

  it('a second up uploads nothing and restarts no agent', async () => {
    const s = scene!
    const w1 = s.lab.host('w1')
    const before = {binary: await stat(w1.pathOnMachine('/usr/local/bin/k3s')), agent: await agentPid(w1)}
    assert.ok(before.agent)
    const again = await hybrid(s, ['up', '--inventory', s.inventory, '--detach', '--json'])
    assert.equal(again.code, 3, again.stderr)
    const doc = lastJson(again.stdout) as {outcome: string; workers: Array<{host: string; status: string}>}
    assert.equal(doc.outcome, 'already-up')
    assert.deepEqual(
      doc.workers.map((w) => `${w.host}:${w.status}`),
      ['w1:ok', 'w2:ok', 'w3:ok', 'w4:failed'],
    )
    const after = {binary: await stat(w1.pathOnMachine('/usr/local/bin/k3s')), agent: await agentPid(w1)}
    assert.equal(after.binary.mtimeMs, before.binary.mtimeMs, 'k3s was not uploaded again')
    assert.equal(after.binary.ino, before.binary.ino)
    assert.equal(after.agent, before.agent, 'the agent was not restarted')
    const dry = await hybrid(s, ['up', '--inventory', s.inventory, '--dry-run', '--json'])
    const plan = lastJson(dry.stdout) as {outcome: string; plan: {changes: Array<{host: string}>}}
    assert.equal(plan.outcome, 'dry-run')
    const changesOnJoined = plan.plan.changes.filter((c) => ['w1', 'w2', 'w3'].includes(c.host))
    assert.deepEqual(changesOnJoined, [], 'a dry run finds nothing to change on the joined workers')
  })

  it('an up killed (SIGKILL) half way through a join is finished by the next up, which redoes nothing already right', async () => {
    const s = scene!
    const w1 = s.lab.host('w1')
    const removed = await hybrid(s, ['workers', 'remove', 'w2', '--inventory', s.inventory])
    assert.equal(removed.code, 0, removed.stderr)
    const before = {binary: await stat(w1.pathOnMachine('/usr/local/bin/k3s')), agent: await agentPid(w1)}

    // Killed once w2's agent files are written: uploaded and configured, no service yet.
    const child = spawn(process.execPath, [RUN_JS, 'up', '--inventory', s.inventory, '--detach', '--json'], {
      env: s.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const closed = once(child, 'close')
    let seen = ''
    const killed = await new Promise<boolean>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        seen += chunk.toString()
        const written = events(seen).some(
          (e) => e.event === 'step' && e.host === 'w2' && e.step === 'write the agent config' && e.status === 'done',
        )
        if (written && child.kill('SIGKILL')) resolve(true)
      })
      void closed.then(() => resolve(false))
    })
    await closed
    assert.ok(killed, `up was killed after w2 wrote its agent files:\n${seen}`)
    const list = JSON.parse((await hybrid(s, ['workers', 'list', '--inventory', s.inventory, '--json'])).stdout) as {
      workers: Array<{name: string; status: string}>
    }
    assert.notEqual(list.workers.find((w) => w.name === 'w2')?.status, 'joined', 'w2 is half joined')

    const again = await hybrid(s, ['up', '--inventory', s.inventory, '--detach', '--json'])
    assert.equal(again.code, 3, again.stderr) // w4 still refused
    const doc = lastJson(again.stdout) as {workers: Array<{host: string; status: string}>}
    assert.deepEqual(
      doc.workers.map((w) => `${w.host}:${w.status}`),
      ['w1:ok', 'w2:ok', 'w3:ok', 'w4:failed'],
    )
    const changes = events(again.stdout).filter((e) => e.event === 'change')
    assert.deepEqual(
      changes.filter((c) => c.host === 'w1' || c.host === 'w3'),
      [],
      'nothing changes on the workers that were joined',
    )
    const onW2 = changes.filter((c) => c.host === 'w2').map((c) => String(c.sentence))
    assert.ok(
      onW2.every((sentence) => !/^upload /.test(sentence) && !/config\.yaml|token/.test(sentence)),
      `k3s and the agent files are not written again: ${onW2.join('; ')}`,
    )
    assert.equal((await nodes(s)).get('w2')?.ready, true)
    const finished = JSON.parse(
      (await hybrid(s, ['workers', 'list', '--inventory', s.inventory, '--json'])).stdout,
    ) as {
      workers: Array<{name: string; status: string}>
    }
    assert.equal(finished.workers.find((w) => w.name === 'w2')?.status, 'joined', 'the second up finishes w2')
    const after = {binary: await stat(w1.pathOnMachine('/usr/local/bin/k3s')), agent: await agentPid(w1)}
    assert.equal(after.binary.mtimeMs, before.binary.mtimeMs)
    assert.equal(after.agent, before.agent, "w1's agent was not restarted")
  })

  it('one Ctrl-C (SIGINT) during a join lets the step in flight finish, says the worker stopped half way, and leaves the running cluster up; the next up finishes the join', async () => {
    const s = scene!
    const removed = await hybrid(s, ['workers', 'remove', 'w2', '--inventory', s.inventory])
    assert.equal(removed.code, 0, removed.stderr)
    const child = spawn(process.execPath, [RUN_JS, 'up', '--inventory', s.inventory, '--detach', '--json'], {
      env: s.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>
    let seen = ''
    let signalled = -1 // when SIGINT was sent (ms since the epoch)
    child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString()
      if (signalled >= 0) return
      const uploading = events(seen).some((e) => e.event === 'step' && e.host === 'w2' && e.step === 'upload k3s')
      if (uploading && child.kill('SIGINT')) signalled = Date.now()
    })
    const [code] = await closed
    assert.ok(signalled >= 0, `up was interrupted during w2's join:\n${seen}`)
    // The first Ctrl-C finishes and cleans up, then fails (1); only a second one exits at once with 130.
    assert.equal(code, 1, `an interrupted up exits 1:\n${seen}`)
    assert.match(seen, /"code": "INTERRUPTED"/)
    assert.match(seen, /w2[\w, ]* stopped half way, as recorded \(`hybrid up` goes on from there\)/)
    const all = events(seen)
    const isW2Step = (e: Record<string, unknown>) => e.event === 'step' && e.host === 'w2'
    assert.ok(!all.some((e) => isW2Step(e) && e.step === 'wait for the Node' && e.status === 'done'), 'w2 did not join')
    // The steps in flight when the signal lands run on; none starts later (three seconds' grace for the
    // signal to reach a busy process on a loaded machine).
    const startedAfter = all.filter(
      (e) => isW2Step(e) && e.status === 'start' && Date.parse(String(e.time)) > signalled + 3000,
    )
    assert.deepEqual(startedAfter, [], 'no step starts after the interruption')
    const status = JSON.parse((await hybrid(s, ['status', '--json'])).stdout) as {up: boolean}
    assert.equal(status.up, true, 'the running cluster stays up')

    const again = await hybrid(s, ['up', '--inventory', s.inventory, '--detach', '--json'])
    assert.equal(again.code, 3, again.stderr) // w4 still refused
    assert.equal((await nodes(s)).get('w2')?.ready, true, 'the next up finishes w2')
  })

  it('restores a killed tunnel by itself: the API answers in the worker again and its Node stays Ready', async () => {
    const s = scene!
    const w1 = s.lab.host('w1')
    const listeners = async () => {
      const ss = await w1.exec(['ss', '-Htlnp', `sport = :${s.apiPort}`])
      return [...ss.stdout.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]))
    }
    const [session] = await listeners()
    assert.ok(session, 'sshd listens for the tunnel on the worker')
    assert.equal((await w1.exec(['kill', '-KILL', String(session)])).code, 0)
    await until('the tunnel is back', async () => {
      const [again] = await listeners()
      return again && again !== session && (await apiInside(w1, s.apiPort)).ping === 'pong' ? true : undefined
    })
    const status = JSON.parse((await hybrid(s, ['status', '--json'])).stdout) as {
      workers: Array<{name: string; tunnel: {state: string; reconnects: number} | null}>
    }
    const row = status.workers.find((w) => w.name === 'w1')
    assert.equal(row?.tunnel?.state, 'up')
    assert.ok((row?.tunnel?.reconnects ?? 0) >= 1, 'status counts the reconnect')
    assert.equal((await nodes(s)).get('w1')?.ready, true)
  })

  it('down keeps the agents, and the next up finds them joined: nothing uploaded, written or restarted on them', async () => {
    const s = scene!
    const joined = ['w1', 'w2', 'w3']
    // The agent hybrid starts on these service-less hosts is its supervisor (WORKER_PATHS.pidFile),
    // which runs the k3s agent and starts it again should it exit: a restart by hybrid is a new supervisor.
    const agentsOf = () =>
      Promise.all(
        joined.map(async (name) =>
          (await readFile(s.lab.host(name).pathOnMachine(WORKER_PATHS.pidFile), 'utf8').catch(() => '')).trim(),
        ),
      )
    const k3sAgents = () => Promise.all(joined.map((name) => agentPid(s.lab.host(name))))
    const k3sBefore = await k3sAgents()
    const before = await agentsOf()
    assert.ok(
      before.every((pid) => /^\d+$/.test(pid)),
      `every joined worker runs its agent: ${before.join(', ')}`,
    )
    const down = await hybrid(s, ['down', '--inventory', s.inventory])
    assert.equal(down.code, 0, down.stderr)
    assert.match(down.stdout, /w1, w2, w3 keep hybrid's agent, so the next `up` finds them joined/)
    assert.deepEqual(await agentsOf(), before, 'down left the agents running')

    const up = await hybrid(s, ['up', '--inventory', s.inventory, '--detach', '--json'])
    assert.equal(up.code, 3, up.stderr) // w4 still refused
    const doc = lastJson(up.stdout) as {outcome: string; workers: Array<{host: string; status: string}>}
    assert.deepEqual(
      doc.workers.map((w) => `${w.host}:${w.status}`),
      ['w1:ok', 'w2:ok', 'w3:ok', 'w4:failed'],
    )
    const all = events(up.stdout)
    const onJoined = (e: Record<string, unknown>) => joined.includes(String(e.host))
    assert.deepEqual(
      all.filter((e) => e.event === 'change' && onJoined(e)).map((e) => `${String(e.host)}: ${String(e.sentence)}`),
      [],
      'up has nothing to change on the joined workers: no upload, no write, no restart',
    )
    assert.deepEqual(await agentsOf(), before, 'each worker’s agent is the same process')
    const k3sAfter = await k3sAgents()
    if (k3sAfter.join() !== k3sBefore.join())
      // Not hybrid's doing (it reported no change): the stand-in's agent process exited meanwhile and its
      // supervisor started it again; said here so that a reader of the run sees it.
      process.stdout.write(`      note: k3s agent processes ${k3sBefore.join(', ')} are now ${k3sAfter.join(', ')}\n`)
    const seen = await nodes(s)
    for (const name of joined) assert.equal(seen.get(name)?.ready, true, `${name} is Ready again`)
  })

  it('a host replaced under the name of a joined worker (agent, k3s files and /etc/rancher/node gone) joins again: the server takes its node password, and its Node heartbeats', async () => {
    const s = scene!
    const w3 = s.lab.host('w3')
    const password = (await readFile(w3.pathOnMachine('/etc/rancher/node/password'), 'utf8')).trim()
    assert.match(password, /^[0-9a-f]{32}$/)
    assert.equal((await stat(w3.pathOnMachine('/etc/rancher/node/password'))).mode & 0o777, 0o600)
    // The old host goes: its agent stopped (its supervisor by the pid it recorded), everything k3s had wiped.
    const supervisor = (await w3.exec(['cat', '/run/k3s-agent.pid'])).stdout.trim()
    assert.match(supervisor, /^\d+$/)
    assert.equal((await w3.exec(['kill', '-TERM', supervisor])).code, 0)
    await until("w3's agent gone", async () => ((await agentPid(w3)) === undefined ? true : undefined))
    // (/etc/rancher and /var/lib/rancher are the lab host's own mounts: their contents go)
    const wipe = 'rm -rf /usr/local/bin/k3s /etc/rancher/* /var/lib/rancher/* /run/k3s /run/k3s-agent.pid'
    assert.equal((await w3.exec(['sh', '-c', wipe])).code, 0)

    const up = await hybrid(s, ['up', '--inventory', s.inventory, '--detach', '--json'])
    assert.equal(up.code, 3, up.stderr)
    const doc = lastJson(up.stdout) as {workers: Array<{host: string; status: string}>}
    assert.deepEqual(
      doc.workers.map((w) => `${w.host}:${w.status}`),
      ['w1:ok', 'w2:ok', 'w3:ok', 'w4:failed'],
    )
    // The new agent must be the one keeping the Node Ready: its heartbeats arrive after the up.
    const since = Date.now()
    const heartbeat = async () => {
      const node = JSON.parse(await kubectl(s, ['get', 'node', 'w3', '-o', 'json'])) as {
        status: {conditions: Array<{type: string; status: string; lastHeartbeatTime: string}>}
      }
      const ready = node.status.conditions.find((c) => c.type === 'Ready')
      return ready?.status === 'True' && Date.parse(ready.lastHeartbeatTime) > since ? true : undefined
    }
    await until("a heartbeat of w3's new agent", heartbeat, 20_000)
    const log = await readFile(w3.pathOnMachine('/var/lib/rancher/hybrid/k3s-agent.log'), 'utf8').catch(() => '')
    assert.doesNotMatch(log, /Node password rejected/)
    assert.equal((await readFile(w3.pathOnMachine('/etc/rancher/node/password'), 'utf8')).trim(), password)
  })

  it('workers remove w2 leaves nothing on w2 and deletes its Node; list shows it missing, add joins it again; down keeps the agents, down --uninstall-workers then takes all out from the records', async () => {
    const s = scene!
    const w2 = s.lab.host('w2')
    const removed = await hybrid(s, ['workers', 'remove', 'w2', '--inventory', s.inventory])
    assert.equal(removed.code, 0, removed.stderr)
    assert.deepEqual(await leftOn(w2, s.apiPort), [])
    assert.equal((await nodes(s)).has('w2'), false)

    const list = JSON.parse((await hybrid(s, ['workers', 'list', '--inventory', s.inventory, '--json'])).stdout) as {
      workers: Array<{name: string; status: string}>
    }
    assert.deepEqual(
      list.workers.map((w) => `${w.name}:${w.status}`),
      ['w1:joined', 'w2:missing', 'w3:joined', 'w4:missing'],
    )

    const added = await hybrid(s, ['workers', 'add', 'w2', '--inventory', s.inventory])
    assert.equal(added.code, 0, added.stderr)
    assert.equal((await nodes(s)).get('w2')?.ready, true, 'w2 joins again under its old name')
    await podNetworkOn(s, w2)
    const unknown = await hybrid(s, ['workers', 'add', 'w9', '--inventory', s.inventory])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /spec\.workers has no worker named w9/)

    const down = await hybrid(s, ['down', '--inventory', s.inventory])
    assert.equal(down.code, 0, down.stderr)
    assert.match(down.stdout, /w1, w2, w3 keep hybrid's agent, so the next `up` finds them joined/)
    for (const name of ['w1', 'w2', 'w3'])
      assert.notDeepEqual(await leftOn(s.lab.host(name), s.apiPort), [], `${name} keeps its install`)
    const kept = JSON.parse((await hybrid(s, ['workers', 'list', '--inventory', s.inventory, '--json'])).stdout) as {
      workers: Array<{name: string; agent: {state: string} | null; tunnel: unknown}>
    }
    assert.deepEqual(
      kept.workers.map(
        (w) => `${w.name}:agent ${w.agent?.state ?? 'none'}:tunnel ${w.tunnel === null ? 'none' : 'some'}`,
      ),
      [
        'w1:agent running:tunnel none',
        'w2:agent running:tunnel none',
        'w3:agent running:tunnel none',
        'w4:agent none:tunnel none',
      ],
      'the agents run on, asked over SSH; the tunnels stopped with the supervisor',
    )

    const uninstall = await hybrid(s, ['down', '--uninstall-workers'])
    assert.equal(uninstall.code, 0, uninstall.stderr)
    for (const name of ['w1', 'w2', 'w3'])
      assert.deepEqual(await leftOn(s.lab.host(name), s.apiPort), [], `nothing left on ${name}`)
    const again = await hybrid(s, ['down', '--uninstall-workers'])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /cluster joined is not up; nothing to do/)
  })

  it('after down --uninstall-workers without the API, the next up deletes the removed workers’ Nodes and node-password secrets before anything joins', async () => {
    // Goes on from the test above: w1, w2 and w3 were taken out by `down --uninstall-workers` after a plain
    // `down`, so the API was not up to delete their Nodes; k3s kept them in its datastore.
    const s = scene!
    const doc = JSON.parse(await readFile(s.inventory, 'utf8')) as {spec: {workers: unknown[]}}
    doc.spec.workers = []
    const noWorkers = join(s.dir, 'no-workers.yaml')
    await writeFile(noWorkers, JSON.stringify(doc, null, 2))
    const up = await hybrid(s, ['up', '--inventory', noWorkers, '--detach'])
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`)
    const seen = await nodes(s)
    for (const name of ['w1', 'w2', 'w3']) assert.equal(seen.has(name), false, `no Node ${name} is left`)
    const secrets = await kubectl(s, ['get', 'secrets', '-n', 'kube-system', '-o', 'name'])
    assert.doesNotMatch(secrets, /w[123]\.node-password\.k3s/)
    const again = await hybrid(s, ['up', '--inventory', noWorkers, '--detach'])
    assert.equal(again.code, 0, again.stderr)
    assert.doesNotMatch(again.stderr, /delete Node/, 'the deletions were done once, and forgotten')
    const down = await hybrid(s, ['down', '--inventory', noWorkers])
    assert.equal(down.code, 0, down.stderr)
  })
})
