import {strict as assert} from 'node:assert'
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {JOIN_STEPS} from '../../src/phases/join-workers.js'
import {createLab, type Lab, requireLab} from '../helpers/lab.js'
import {leftOn} from '../helpers/worker-leftovers.js'
import {writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort, nodes, run, RUN_JS, STANDIN} from '../system/cluster-fixture.js'

/**
 * Crash windows (docs/architecture.md, "Crash windows"): `hybrid up` killed with SIGKILL inside each join
 * step of one lab worker (the detached supervisor lives on, as after a real crash) is undone by `down
 * --uninstall-workers`, which leaves nothing on the worker, or finished by the next `up`. Uses the k3s
 * stand-in (an agentless server on this machine) and a real lab sshd.
 */

interface Scene {
  readonly dir: string
  readonly lab: Lab
  readonly inventory: string
  readonly apiPort: number
  readonly env: NodeJS.ProcessEnv
  readonly kubeconfig: string
}

function hybrid(scene: Scene, args: string[], timeoutMs = 120_000) {
  return run(process.execPath, [RUN_JS, ...args], {env: scene.env, timeoutMs})
}

/** The progress events `--json` printed so far, one JSON object a line. */
function events(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{"'))
    .flatMap((line) => {
      try {
        const value = JSON.parse(line) as Record<string, unknown>
        return typeof value.event === 'string' ? [value] : []
      } catch {
        return []
      }
    })
}

/** What is left on w1, given a few seconds (sshd reaps a killed session's forward a moment later). */
async function leftOnW1(s: Scene): Promise<string[]> {
  let left = await leftOn(s.lab.host('w1'), s.apiPort)
  for (let i = 0; i < 20 && left.length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    left = await leftOn(s.lab.host('w1'), s.apiPort)
  }
  return left
}

/**
 * Start `up --detach --json` and SIGKILL it (only it) `delayMs` after `step` starts for w1. Resolves
 * whether it was killed inside the run (false: up ended first, e.g. the step never ran).
 */
async function upKilledIn(s: Scene, step: string, delayMs: number): Promise<{killed: boolean; seen: string}> {
  const child = spawn(process.execPath, [RUN_JS, 'up', '--inventory', s.inventory, '--detach', '--json'], {
    env: s.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const closed = once(child, 'close')
  let seen = ''
  let armed = false
  const killed = await new Promise<boolean>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString()
      if (armed) return
      const started = events(seen).some(
        (e) => e.event === 'step' && e.host === 'w1' && e.step === step && e.status === 'start',
      )
      if (!started) return
      armed = true
      setTimeout(() => resolve(child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')), delayMs)
    })
    void closed.then(() => resolve(false))
  })
  await closed
  return {killed, seen}
}

describe('an up killed (SIGKILL) inside each join step is undone by down or finished by the next up (stand-in k3s, lab sshd)', function () {
  this.timeout(600_000)
  let scene: Scene | undefined

  before(async function () {
    requireLab(this)
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-crash-'))
    const lab = await createLab({hosts: [{name: 'w1'}]})
    const apiPort = await freePort()
    const inventory = await writeLabInventory(dir, lab, [{host: lab.host('w1')}], {
      name: 'crashed',
      ssh: {connectTimeoutSeconds: 10},
      k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
      controlPlane: {agent: false, apiPort},
    })
    scene = {
      dir,
      lab,
      inventory,
      apiPort,
      env: fixtureEnv(dir, {HYBRID_NODE_READY_TIMEOUT_SECONDS: '60', HYBRID_TUNNEL_TIMEOUT_SECONDS: '20'}),
      kubeconfig: join(dir, 'state', 'clusters', 'crashed', 'kubeconfig'),
    }
  })

  after(async () => {
    if (!scene) return
    await hybrid(scene, ['down', '--uninstall-workers', '--inventory', scene.inventory]).catch(() => undefined)
    await scene.lab.destroy()
    await rm(scene.dir, {recursive: true, force: true})
  })

  JOIN_STEPS.forEach((step, index) => {
    const finish = index % 2 === 0
    it(`killed in "${step.title}": ${finish ? 'the next up joins w1, then down' : 'down'} leaves w1 clean`, async () => {
      const s = scene!
      // Inside the step: at its start for the short ones, a moment after for the rest.
      const {killed, seen} = await upKilledIn(s, step.title, index % 4 < 2 ? 0 : 150)
      assert.ok(killed, `up was killed in "${step.title}" for w1:\n${seen.slice(-2000)}`)
      if (finish) {
        const again = await hybrid(s, ['up', '--inventory', s.inventory, '--detach', '--json'])
        assert.equal(again.code, 0, `${again.stderr}\n${again.stdout.slice(-2000)}`)
        assert.equal((await nodes(s)).get('w1')?.ready, true, "w1's Node is Ready")
        const list = JSON.parse(
          (await hybrid(s, ['workers', 'list', '--inventory', s.inventory, '--json'])).stdout,
        ) as {
          workers: Array<{name: string; status: string}>
        }
        assert.equal(list.workers.find((w) => w.name === 'w1')?.status, 'joined')
      }
      const down = await hybrid(s, ['down', '--uninstall-workers', '--inventory', s.inventory])
      assert.equal(down.code, 0, `${down.stderr}\n${down.stdout}`)
      assert.deepEqual(await leftOnW1(s), [], `nothing of hybrid's is left on w1 after a kill in "${step.title}"`)
    })
  })
})
