import {strict as assert} from 'node:assert'
import {mkdtemp, readdir, readFile, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createLab, type Lab, type LabHost, requireLab} from '../helpers/lab.js'
import {startHybrid} from '../native/helpers/run-hybrid.js'
import {writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort, run, RUN_JS, STANDIN} from '../system/cluster-fixture.js'

/**
 * One mutating run at a time per cluster (docs/architecture.md, "Concurrency"): while a `workers remove`
 * runs against a cluster of the k3s stand-in with two real lab workers, an `up` started meanwhile is
 * refused at once, naming the remove's pid and command, and an `up --wait` waits for it and then does
 * its work; nothing is left half-written.
 */
describe('one run at a time per cluster (stand-in k3s, real lab sshd)', function () {
  this.timeout(600_000)
  let dir: string
  let lab: Lab | undefined
  let inventory: string
  let env: NodeJS.ProcessEnv

  const hybrid = (args: string[]) => run(process.execPath, [RUN_JS, ...args], {env, timeoutMs: 300_000})

  before(async function () {
    requireLab(this)
    dir = await mkdtemp(join(tmpdir(), 'hybrid-run-lock-'))
    lab = await createLab({hosts: [{name: 'w1'}, {name: 'w2'}]})
    inventory = await writeLabInventory(
      dir,
      lab,
      lab.hosts.map((host) => ({host})),
      {
        name: 'locked',
        k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
        controlPlane: {agent: false, apiPort: await freePort()},
      },
    )
    env = fixtureEnv(dir, {HYBRID_NODE_READY_TIMEOUT_SECONDS: '60'})
  })
  after(async () => {
    if (env) await hybrid(['down', '--uninstall-workers', '--inventory', inventory]).catch(() => undefined)
    await lab?.destroy()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  /** The `time` of each progress event `--json` printed (one JSON object a line). */
  const eventTimes = (stdout: string): number[] =>
    stdout
      .split('\n')
      .filter((line) => line.startsWith('{"time"'))
      .map((line) => Date.parse((JSON.parse(line) as {time: string}).time))

  /** Files of an unfinished write on a worker: upload temp names, staging copies, shell temp files. */
  async function halfWritten(host: LabHost): Promise<string[]> {
    const found: string[] = []
    for (const dirInHost of [
      '/usr/local/bin',
      '/etc/rancher/k3s',
      '/etc/systemd/system',
      '/root/.cache/hybrid/uploads',
    ]) {
      const names = await readdir(host.pathOnMachine(dirInHost)).catch(() => [] as string[])
      for (const name of names) if (/\.hybrid-|\.part$/.test(name)) found.push(`${host.name}:${join(dirInHost, name)}`)
    }
    return found
  }

  it('two ups and a workers remove at once: the first up proceeds, the second is refused naming its pid and command, the remove --wait runs after it; nothing is half-written', async () => {
    const up = startHybrid(['up', '--detach', '--inventory', inventory, '--json'], {env, timeoutMs: 300_000})
    await up.waitForStdout('"host":"w1"') // it checks the workers before it starts the control plane
    const refused = startHybrid(['up', '--detach', '--inventory', inventory], {env, timeoutMs: 300_000})
    const remove = startHybrid(['workers', 'remove', 'w2', '--wait', '300', '--inventory', inventory, '--json'], {
      env,
      timeoutMs: 300_000,
    })
    const [upped, refusal, removed] = await Promise.all([up.result, refused.result, remove.result])

    assert.equal(upped.code, 0, upped.stderr)
    assert.equal(refusal.code, 1, `the second up was not refused:\n${refusal.stdout}\n${refusal.stderr}`)
    const sentence = refusal.stderr.split('\n').filter((l) => l.startsWith('hybrid: '))
    assert.equal(sentence.length, 1, refusal.stderr)
    assert.match(
      sentence[0],
      new RegExp(
        `^hybrid: cluster locked is being changed by another hybrid: pid ${up.child.pid}, \`hybrid up --detach --inventory \\S+ --json\`, since \\S+; let it finish, or run again with --wait SECONDS$`,
      ),
    )
    assert.equal(removed.code, 0, removed.stderr)
    // The waiting remove started its first step only after the up's last one.
    const upEvents = eventTimes(upped.stdout)
    const removeEvents = eventTimes(removed.stdout)
    assert.ok(removeEvents.length > 0 && upEvents.length > 0, 'both printed progress events')
    assert.ok(
      Math.max(...upEvents) <= Math.min(...removeEvents),
      `the runs interleaved: up until ${new Date(Math.max(...upEvents)).toISOString()}, remove from ${new Date(Math.min(...removeEvents)).toISOString()}`,
    )

    // Nothing half-written: no temp or staging file on a worker, records and state whole, no lock left.
    const l = lab!
    assert.deepEqual([...(await halfWritten(l.host('w1'))), ...(await halfWritten(l.host('w2')))], [])
    const clusterDir = join(env.HYBRID_STATE_DIR!, 'clusters', 'locked')
    const state = JSON.parse(await readFile(join(clusterDir, 'state.json'), 'utf8')) as {phase: string}
    assert.equal(state.phase, 'ready')
    const record = JSON.parse(await readFile(join(clusterDir, 'workers', 'w1.json'), 'utf8')) as {phase: string}
    assert.equal(record.phase, 'joined', "w1's record")
    await assert.rejects(stat(join(clusterDir, 'workers', 'w2.json')), /ENOENT/, 'w2 is removed, its record gone')
    assert.deepEqual(
      (await readdir(clusterDir)).filter((n) => n.startsWith('.') || n.includes('lock')),
      [],
      'no temp file, no lock left behind',
    )
    await assert.rejects(stat(join(clusterDir, 'run.lock')), /ENOENT/)
  })
})
