import {strict as assert} from 'node:assert'
import {execFileSync} from 'node:child_process'
import {copyFile, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {WorkerCheck, WorkerChecks} from '../../src/remote/worker-check.js'
import {createLab, type Lab, requireLab} from '../helpers/lab.js'
import {runHybrid} from '../native/helpers/run-hybrid.js'
import {fileDigest, hostDigest, writeLabInventory} from './lab-workers.js'

/**
 * `hybrid preflight --inventory` with workers, as a user runs it: one row per worker, each fault named on
 * its own worker, the good worker's facts, in about the connect timeout, and nothing changed anywhere.
 */
describe('hybrid preflight checks the workers (lab)', function () {
  this.timeout(180_000)
  let lab: Lab
  let dir: string

  before(async function () {
    requireLab(this)
    dir = await mkdtemp(join(tmpdir(), 'hybrid-worker-preflight-'))
    lab = await createLab({
      hosts: [
        {name: 'good', sshd: ['GatewayPorts clientspecified']},
        {name: 'stranger', sshd: ['GatewayPorts clientspecified']},
        {name: 'gone', reachable: false},
        {name: 'nokey', acceptLabKey: false},
        {name: 'closed', sshd: ['GatewayPorts no']},
        {name: 'p1', sshd: ['GatewayPorts clientspecified']},
        {name: 'p2', sshd: ['GatewayPorts clientspecified']},
      ],
    })
  })
  after(async () => {
    await lab?.destroy()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  const rows = (checks: WorkerChecks) =>
    Object.fromEntries(checks.workers.map((w) => [w.name, w])) as Record<string, WorkerCheck>

  it('five workers, one of each fault: exit 1, each fault on its own worker, the good one’s facts, nothing changed', async () => {
    // A known_hosts of the test's own that lacks the stranger's key.
    const knownHosts = join(dir, 'known_hosts')
    await copyFile(lab.knownHosts, knownHosts)
    execFileSync('ssh-keygen', ['-R', lab.host('stranger').address, '-f', knownHosts], {stdio: 'ignore'})
    const scene = ['good', 'stranger', 'gone', 'nokey', 'closed'].map((name) => lab.host(name))
    const inventory = await writeLabInventory(
      dir,
      lab,
      scene.map((host) => ({host})),
      {knownHosts, network: {manageSshd: false}},
    )
    const before = {known: await fileDigest(knownHosts), hosts: await Promise.all(scene.map(hostDigest))}

    const run = await runHybrid(['preflight', '--inventory', inventory, '--json'])
    assert.equal(run.code, 1, run.stderr)
    const result = JSON.parse(run.stdout) as {workers: WorkerChecks; error: {code: string; message: string}}
    assert.equal(result.error.code, 'WORKERS_NOT_READY')
    assert.match(result.error.message, /^4 of 5 workers cannot be used \(stranger, gone, nokey, closed\)/)
    const byName = rows(result.workers)

    const good = byName.good
    assert.deepEqual(good.problems, [])
    assert.deepEqual(
      [good.reachable, good.auth, good.hostKey, good.sudo, good.arch, good.init, good.tunnel, good.k3s],
      [true, 'ok', 'known', 'root', 'amd64', 'none', 'ready', 'none'],
    )
    assert.equal(good.facts?.os?.id, 'debian')
    assert.deepEqual(good.facts?.sshd, {gatewayPorts: 'clientspecified', allowTcpForwarding: 'yes', source: 'sshd -T'})
    assert.ok(good.facts?.ports.every((p) => p.free))

    assert.equal(byName.stranger.hostKey, 'unknown')
    assert.equal(byName.stranger.error?.code, 'SSH_HOST_KEY_UNKNOWN')
    assert.match(byName.stranger.problems[0], /^stranger: the host key of .* is not in .*hostKeyPolicy: accept-new/)

    assert.equal(byName.gone.reachable, false)
    assert.ok(['SSH_TIMEOUT', 'SSH_UNREACHABLE'].includes(byName.gone.error!.code), byName.gone.error!.code)
    assert.match(byName.gone.problems[0], /^gone: /)

    assert.equal(byName.nokey.reachable, true)
    assert.equal(byName.nokey.auth, 'refused')
    assert.match(byName.nokey.problems[0], /^nokey: .* refused key .* for user root/)

    assert.equal(byName.closed.tunnel, 'blocked')
    assert.match(
      byName.closed.problems[0],
      /^closed: sshd has GatewayPorts no, so the API tunnel cannot listen on 100\.64\.255\.1:6443 there; .*network\.manageSshd: true$/,
    )
    for (const w of result.workers.workers) {
      if (w.name !== 'good') assert.equal(w.problems.length, 1, `${w.name}: ${w.problems.join(' | ')}`)
      for (const problem of w.problems) assert.ok(!problem.includes('\n'), 'one sentence')
    }
    // In parallel, not one after another: one after another would take the sum of the five checks'
    // times, in parallel it is about the longest (the 3 s connect timeout). Compared with the checks'
    // own times, so a loaded machine slows both sides alike.
    const took = result.workers.workers.map((w) => w.elapsedMs)
    const [longest, sum] = [Math.max(...took), took.reduce((a, b) => a + b, 0)]
    assert.ok(
      result.workers.elapsedMs < longest + (sum - longest) / 2,
      `the checks took ${result.workers.elapsedMs} ms; each: ${took.join(', ')} ms`,
    )
    assert.ok(result.workers.elapsedMs < 10_500, `the checks took ${result.workers.elapsedMs} ms`)

    assert.equal(await fileDigest(knownHosts), before.known, 'known_hosts untouched under strict')
    assert.deepEqual(await Promise.all(scene.map(hostDigest)), before.hosts, 'every host untouched')

    // The same run for a person: the table, each problem on its line, one sentence on stderr, exit 1.
    const human = await runHybrid(['preflight', '--inventory', inventory])
    assert.equal(human.code, 1)
    assert.match(
      human.stdout,
      /^WORKER +ADDRESS +REACHABLE +AUTH +HOST KEY +SUDO +OS +ARCH +INIT +TUNNEL +K3S +RESULT$/m,
    )
    assert.match(human.stdout, /^good +[\d.]+ +yes +ok +known +root +debian 12 +amd64 +none +ready +none +ok$/m)
    assert.match(human.stdout, /^- closed: sshd has GatewayPorts no/m)
    assert.match(human.stderr, /^hybrid: 4 of 5 workers cannot be used \(stranger, gone, nokey, closed\)/m)
  })

  it('accept-new through a proxy: the allowed worker is reached and recorded, the filtered one names the proxy; a changed key is refused', async () => {
    const proxy = await lab.startProxy({allow: ['p1']})
    const knownHosts = join(dir, 'known_hosts_accept_new')
    await writeFile(knownHosts, '')
    const p1 = lab.host('p1')
    const inventory = await writeLabInventory(dir, lab, [{host: p1}, {host: lab.host('p2')}], {
      knownHosts,
      ssh: {hostKeyPolicy: 'accept-new', proxy: proxy.url},
    })
    const first = await runHybrid(['preflight', '--inventory', inventory, '--json'])
    assert.equal(first.code, 1, first.stderr)
    const byName = rows((JSON.parse(first.stdout) as {workers: WorkerChecks}).workers)
    assert.equal(byName.p1.hostKey, 'recorded')
    assert.deepEqual(byName.p1.problems, [])
    assert.equal(byName.p2.error?.code, 'SSH_PROXY_REFUSED')
    assert.match(
      byName.p2.problems[0],
      /^p2: the proxy http:\/\/127\.0\.0\.1:\d+ refused the tunnel to [\d.]+:22: 403 Filtered$/,
    )
    assert.match(await readFile(knownHosts, 'utf8'), /ssh-ed25519/)
    execFileSync('ssh-keygen', ['-F', p1.address, '-f', knownHosts], {stdio: 'ignore'}) // found: exit 0

    await p1.regenerateHostKey()
    const before = await fileDigest(knownHosts)
    const second = await runHybrid(['preflight', '--inventory', inventory, '--json'])
    const again = rows((JSON.parse(second.stdout) as {workers: WorkerChecks}).workers)
    assert.equal(again.p1.hostKey, 'changed')
    assert.match(again.p1.problems[0], /man-in-the-middle/)
    assert.equal(await fileDigest(knownHosts), before, 'the changed key is not recorded')
    await proxy.stop()
  })
})
