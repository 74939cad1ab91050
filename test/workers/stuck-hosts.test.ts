import {strict as assert} from 'node:assert'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createLab, type Lab, type LabHost, requireLab} from '../helpers/lab.js'
import {writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort, nodes, STANDIN} from '../system/cluster-fixture.js'
import {hybrid, until} from './scene.js'

/**
 * Workers that hang or flood (docs/architecture.md, "Trust and failure model"): real lab sshd whose login
 * is accepted and then hangs (a ForceCommand that never returns: what a hung PAM module, home directory
 * or stopped shell look like from here), and one whose every command prints without end. `up` joins the
 * others and names each stuck one within its deadline (exit 3); later, a joined worker whose login starts
 * hanging leaves `status` answering within 10 s and its tunnel down with a sentence, while another
 * worker's tunnel, cut at the same time, comes back by itself.
 */

const COMMAND_SECONDS = 5
const OUTPUT_LIMIT = 65536

interface Scene {
  readonly dir: string
  readonly lab: Lab
  readonly inventory: string
  readonly env: NodeJS.ProcessEnv
  readonly kubeconfig: string
}

/** Make the host's sshd accept logins and then run `command` instead of whatever was asked (restarted). */
async function forceCommand(host: LabHost, command: string): Promise<void> {
  const r = await host.exec(['sh', '-c', `echo "ForceCommand ${command}" >/etc/ssh/sshd_config.d/00-test-stuck.conf`])
  assert.equal(r.code, 0, r.stderr)
  await host.stopSshd()
  await host.startSshd()
}

interface TunnelRow {
  worker: string
  state: string
  lastError?: string
}

async function tunnels(scene: Scene): Promise<TunnelRow[]> {
  const file = join(scene.env.HYBRID_STATE_DIR!, 'clusters', 'stuck', 'tunnels.json')
  const text = await readFile(file, 'utf8').catch(() => '{"tunnels": []}')
  return (JSON.parse(text) as {tunnels: TunnelRow[]}).tunnels
}

describe('workers that hang or flood (stand-in k3s, real lab sshd)', function () {
  this.timeout(600_000)
  let scene: Scene | undefined

  before(async function () {
    requireLab(this)
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-stuck-'))
    const lab = await createLab({
      hosts: [
        {name: 'w1'},
        {name: 'w2'},
        // Login accepted, then nothing: every command sleeps for ever.
        {name: 'hang', sshd: ['ForceCommand sleep 1000000']},
        // Every command prints without end.
        {name: 'flood', sshd: ['ForceCommand yes']},
      ],
    })
    const inventory = await writeLabInventory(
      dir,
      lab,
      lab.hosts.map((host) => ({host})),
      {
        name: 'stuck',
        k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
        controlPlane: {agent: false, apiPort: await freePort()},
        ssh: {commandTimeoutSeconds: COMMAND_SECONDS, outputLimitBytes: OUTPUT_LIMIT},
      },
    )
    scene = {
      dir,
      lab,
      inventory,
      env: fixtureEnv(dir, {HYBRID_NODE_READY_TIMEOUT_SECONDS: '60'}),
      kubeconfig: join(dir, 'state', 'clusters', 'stuck', 'kubeconfig'),
    }
  })

  after(async () => {
    if (!scene) return
    for (const name of ['w1', 'w2']) {
      const host = scene.lab.host(name)
      await host.exec(['rm', '-f', '/etc/ssh/sshd_config.d/00-test-stuck.conf']).catch(() => undefined)
    }
    await scene.lab
      .host('w1')
      .stopSshd()
      .then(() => scene!.lab.host('w1').startSshd())
      .catch(() => undefined)
    await hybrid(scene, ['down', '--uninstall-workers', '--inventory', scene.inventory]).catch(() => undefined)
    await scene.lab.destroy()
    await rm(scene.dir, {recursive: true, force: true})
  })

  it('up joins the others and names each stuck worker within its deadline (exit 3)', async () => {
    const s = scene!
    const started = Date.now()
    const up = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    const took = Date.now() - started
    assert.equal(up.code, 3, `${up.stdout}\n${up.stderr}`)
    assert.match(
      up.stderr,
      new RegExp(`hang: \\S+ did not finish within ${COMMAND_SECONDS}s \\(ssh\\.commandTimeoutSeconds\\)`),
      'the hanging worker is named with its deadline',
    )
    assert.match(
      up.stderr,
      new RegExp(`flood: \\S+ printed more than ${OUTPUT_LIMIT} bytes \\(ssh\\.outputLimitBytes\\)`),
      'the flooding worker is named with its cap',
    )
    const seen = await nodes(s)
    for (const name of ['w1', 'w2']) assert.equal(seen.get(name)?.ready, true, `${name} joined and is Ready`)
    for (const name of ['hang', 'flood']) assert.equal(seen.has(name), false, `${name} did not join`)
    // The stuck workers cost one command deadline each (checked before the control plane starts, all at once).
    const checks = /check the workers [\d.]+s/.exec(up.stdout)?.[0] ?? ''
    const checkSeconds = Number(/([\d.]+)s$/.exec(checks)?.[1])
    assert.ok(checkSeconds < COMMAND_SECONDS * 3, `checking the workers took ${checkSeconds}s (${took} ms in all)`)
  })

  it('a joined worker whose login starts hanging: status answers within 10 s, its tunnel is down with a sentence, and another worker’s tunnel still comes back', async () => {
    const s = scene!
    const w1 = s.lab.host('w1')
    const w2 = s.lab.host('w2')
    await until(
      'both tunnels up',
      async () => ((await tunnels(s)).filter((t) => t.state === 'up').length === 2 ? true : undefined),
      60_000,
    )
    // What status costs when every worker answers, on this machine as loaded as it is right now.
    const baselineStarted = Date.now()
    const baseline = await hybrid(s, ['status', '--json', '--inventory', s.inventory], 60_000)
    const baselineMs = Date.now() - baselineStarted
    assert.equal(baseline.code, 0, baseline.stderr)
    // w1: sshd restarted with a login that hangs (its tunnel's connection is cut, its next one never opens).
    await forceCommand(w1, 'sleep 1000000')
    // w2: its tunnel cut at the same moment (sshd restarted as it was).
    await w2.stopSshd()
    await w2.startSshd()

    const asked = Date.now()
    const status = await hybrid(s, ['status', '--json', '--inventory', s.inventory], 60_000)
    const took = Date.now() - asked
    assert.equal(status.code, 0, status.stderr)
    // A worker that hangs costs status at most 10 s more than a healthy cluster's status (on an idle
    // machine that is 10 s in all; a loaded one starts node itself slowly, which the baseline measures).
    assert.ok(
      took < baselineMs + 10_000,
      `status answered in ${took} ms (${baselineMs} ms with every worker answering)`,
    )
    const doc = JSON.parse(status.stdout) as {workers: Array<{name: string; agent?: {state: string; error?: string}}>}
    const w1Row = doc.workers.find((w) => w.name === 'w1')
    assert.equal(w1Row?.agent?.state, 'unreachable', JSON.stringify(w1Row))
    assert.match(w1Row?.agent?.error ?? '', /^w1: /)

    const back = await until(
      'w2’s tunnel up again while w1’s is stuck',
      async () => {
        const rows = await tunnels(s)
        const w2Row = rows.find((t) => t.worker === 'w2')
        return w2Row?.state === 'up' ? rows : undefined
      },
      60_000,
    )
    const w1Tunnel = back.find((t) => t.worker === 'w1')
    // w1's tunnel says why it is not up: the forward is never answered or its check never returns.
    await until(
      'w1’s tunnel names the hang',
      async () => {
        const row = (await tunnels(s)).find((t) => t.worker === 'w1')
        return row && row.state !== 'up' && /^w1: sshd did not .* within \d+s/.test(row.lastError ?? '')
          ? row
          : undefined
      },
      60_000,
    ).catch((error: Error) => assert.fail(`${error.message}; w1's tunnel: ${JSON.stringify(w1Tunnel)}`))
  })

  it('a worker record that no longer parses is moved aside with one warning, and the supervisor still brings back another worker’s tunnel', async () => {
    const s = scene!
    const workers = join(s.env.HYBRID_STATE_DIR!, 'clusters', 'stuck', 'workers')
    await writeFile(join(workers, 'w1.json'), '{"name": "w1", "spec": ') // cut short, as a full disk leaves it
    // w2's tunnel cut: only the supervisor's loop, reading the records, brings it back.
    const w2 = s.lab.host('w2')
    await w2.stopSshd()
    await w2.startSshd()
    await until(
      'w2’s tunnel up again beside the unusable record',
      async () => ((await tunnels(s)).find((t) => t.worker === 'w2')?.state === 'up' ? true : undefined),
      60_000,
    )
    const moved = (await readdir(workers)).filter((f) => f.startsWith('w1.json.corrupt-'))
    assert.equal(moved.length, 1, `w1's record moved aside once: ${(await readdir(workers)).join(' ')}`)
    const status = await hybrid(s, ['status', '--inventory', s.inventory], 60_000)
    assert.equal(status.code, 0, status.stderr)
    assert.match(status.stdout + status.stderr, new RegExp(`moved aside to \\S*${moved[0]}`))
    const log = await readFile(join(s.env.HYBRID_STATE_DIR!, 'clusters', 'stuck', 'supervisor.log'), 'utf8')
    const warnings = log.split('\n').filter((line) => line.includes(moved[0]))
    assert.equal(warnings.length, 1, 'the supervisor warned once, naming the file')
    assert.match(warnings[0], /the record of worker w1 was unusable/)
  })
})
