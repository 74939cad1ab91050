import {strict as assert} from 'node:assert'
import {chmod, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {pino} from 'pino'

import type {Rule} from '../../src/interceptor/index.js'
import {type SupervisorEvent, type SupervisorOutcome, Supervisor} from '../../src/sandbox/supervisor.js'
import {isAlive, isRecordedProcess, within} from '../../src/util/processes.js'
import {requireTool} from '../helpers/requires.js'

/**
 * A real k3s leaves children behind when it exits (containerd, containerd-shim in a process group of its
 * own, still traced under the interceptor, still using the fake /proc/sys tree). The supervisor must end
 * them before it reports the exit, restarts, or lets stop() resolve. The "k3s" here is a bash script that
 * starts such a child (in its own process group, via job control; optionally deaf to SIGTERM), records
 * its pid, and then exits or keeps running. Real processes, real signals, real ptrace.
 */

/** The scripts' background children sleep this long, so a recorded pid is recognised by its command line. */
const LEFTOVER_SLEEP = '987'
const GRACE_MS = 1000

/** exit: k3s exits (code 3) right after starting its child; run: k3s keeps running (until SIGTERM). */
function fakeK3s(opts: {after: 'exit' | 'run'; childIgnoresTerm: boolean}): string {
  return [
    '#!/bin/bash',
    'set -m', // job control: the child gets a process group of its own, as containerd-shim does
    // Under the interceptor the rule redirects $DIR/real to $DIR/fake: proof that this run was traced.
    'cat "$DIR/real/marker" > "$DIR/seen" 2>/dev/null',
    opts.childIgnoresTerm ? "trap '' TERM" : '',
    `sleep ${LEFTOVER_SLEEP} &`,
    'echo $! > "$DIR/leftover.pid"',
    'trap - TERM',
    opts.after === 'exit' ? 'exit 3' : 'exec sleep 986',
    '',
  ].join('\n')
}

interface Scene {
  supervisor: Supervisor
  events: {event: SupervisorEvent; leftoverAlive?: boolean}[]
  logs: Record<string, unknown>[]
}

for (const mode of ['plain', 'intercepted'] as const) {
  describe(`the supervisor leaves nothing k3s started (${mode})`, function () {
    this.timeout(30_000)
    let dir: string
    let scene: Scene | undefined

    before(function () {
      requireTool(this, 'bash')
    })

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'hybrid-leftovers-'))
      await mkdir(join(dir, 'fake'))
      await writeFile(join(dir, 'fake', 'marker'), 'redirected\n')
    })

    afterEach(async () => {
      // On failure: stop k3s, and kill the recorded child if it is still that sleep.
      if (scene) await within(scene.supervisor.stop(), 10_000)
      scene = undefined
      const pid = await leftoverPid().catch(() => undefined)
      if (pid && (await isRecordedProcess(pid, ['sleep', LEFTOVER_SLEEP]))) process.kill(pid, 'SIGKILL')
      await rm(dir, {recursive: true, force: true})
    })

    async function leftoverPid(): Promise<number> {
      return Number((await readFile(join(dir, 'leftover.pid'), 'utf8')).trim())
    }

    async function startScene(script: string, graceMs = GRACE_MS): Promise<Scene> {
      const binary = join(dir, 'k3s')
      await writeFile(binary, script)
      await chmod(binary, 0o755)
      const rules: Rule[] =
        mode === 'intercepted' ? [{from: join(dir, 'real'), to: join(dir, 'fake'), mode: 'always'}] : []
      const logs: Record<string, unknown>[] = []
      const events: Scene['events'] = []
      const supervisor = new Supervisor({
        launch: {
          binary,
          args: ['server', '--config', join(dir, 'config.yaml')],
          rules,
          env: {DIR: dir},
          k3sKubeconfig: join(dir, 'k3s.yaml'),
        },
        logFile: join(dir, 'k3s.log'),
        readyTimeoutMs: 20_000,
        stopGraceMs: graceMs,
        logger: pino(
          {level: 'debug'},
          {write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>)},
        ),
        // Looked at the moment the supervisor reports k3s's exit.
        onEvent: async (event) =>
          void events.push({
            event,
            ...(event.type === 'exited' ? {leftoverAlive: await isAlive(await leftoverPid())} : {}),
          }),
      })
      scene = {supervisor, events, logs}
      void supervisor.start()
      return scene
    }

    /** The warn line the supervisor logs when it had to end leftovers. */
    function leftoverLog(s: Scene): Record<string, unknown> | undefined {
      return s.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('k3s left '))
    }

    async function assertRanAsMode(): Promise<void> {
      const seen = await readFile(join(dir, 'seen'), 'utf8')
      assert.equal(
        seen,
        mode === 'intercepted' ? 'redirected\n' : '',
        'the rule applied exactly when the run was intercepted',
      )
    }

    it('k3s exits before ready, leaving a child deaf to SIGTERM: the child is SIGKILLed after the grace, before the exit is reported', async () => {
      const s = await startScene(fakeK3s({after: 'exit', childIgnoresTerm: true}))
      const began = Date.now()
      const outcome: SupervisorOutcome = await s.supervisor.done
      const pid = await leftoverPid()
      assert.ok('failed' in outcome, JSON.stringify(outcome))
      assert.equal(outcome.failed.kind, 'died')
      assert.equal(outcome.failed.sentence, 'k3s server exited with code 3 before becoming ready')
      const exited = s.events.find((e) => e.event.type === 'exited')
      assert.equal(exited?.leftoverAlive, false, 'the child was gone when the exit was reported')
      assert.equal(await isAlive(pid), false)
      assert.ok(Date.now() - began >= GRACE_MS, 'SIGTERM was tried for the grace period first')
      assert.deepEqual(
        {left: leftoverLog(s)?.left, killed: leftoverLog(s)?.killed, level: leftoverLog(s)?.level},
        {left: 1, killed: 1, level: 40},
      )
      await assertRanAsMode()
    })

    it('a child that honours SIGTERM ends with it, without waiting for the grace period', async function () {
      this.timeout(90_000)
      // A long grace: finishing well inside it shows SIGTERM alone did it (a third of it leaves a loaded
      // machine three times the old slack).
      const s = await startScene(fakeK3s({after: 'exit', childIgnoresTerm: false}), 45_000)
      const began = Date.now()
      const outcome = await s.supervisor.done
      assert.ok('failed' in outcome && outcome.failed.kind === 'died', JSON.stringify(outcome))
      assert.equal(s.events.find((e) => e.event.type === 'exited')?.leftoverAlive, false)
      assert.equal(await isAlive(await leftoverPid()), false)
      assert.ok(Date.now() - began < 30_000, `took ${Date.now() - began} ms`)
      assert.deepEqual({left: leftoverLog(s)?.left, killed: leftoverLog(s)?.killed}, {left: 1, killed: 0})
      await assertRanAsMode()
    })

    it('stop(): k3s and its child deaf to SIGTERM are both gone when stop() resolves', async () => {
      const s = await startScene(fakeK3s({after: 'run', childIgnoresTerm: true}))
      const pid = await waitForPid(leftoverPid)
      const k3sPid = s.supervisor.pid!
      assert.ok(k3sPid > 0)
      if (mode === 'plain') {
        // The scene is what it claims: the child left k3s's process group but not its session.
        const [pgrp, session] = await groupAndSession(pid)
        assert.notEqual(pgrp, k3sPid)
        assert.equal(session, k3sPid)
      }
      await s.supervisor.stop()
      assert.equal(await isAlive(pid), false, 'the child is gone')
      assert.equal(await isAlive(k3sPid), false, 'k3s is gone')
      assert.deepEqual(await s.supervisor.done, {stopped: true})
      await assert.rejects(s.supervisor.ready, (failure: {kind: string}) => failure.kind === 'stopped')
      assert.deepEqual({left: leftoverLog(s)?.left, killed: leftoverLog(s)?.killed}, {left: 1, killed: 1})
      await assertRanAsMode()
    })
  })
}

/** Poll until the script has recorded its child's pid. */
async function waitForPid(read: () => Promise<number>): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const pid = await read().catch(() => 0)
    if (pid > 0) return pid
    await sleep(50)
  }
  throw new Error('the fake k3s never recorded its child')
}

/** Process group and session of a live process, from /proc. */
async function groupAndSession(pid: number): Promise<[number, number]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const [, , pgrp, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return [Number(pgrp), Number(session)]
}
