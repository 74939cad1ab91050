import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {closeSync, openSync, readFileSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {type InterceptedProcess, spawnIntercepted, writeProcSysTree} from '../../src/interceptor/index.js'
import {requireGvisor, runInGvisor} from '../helpers/gvisor.js'
import {HYBRID, REPO, runHybrid, startHybrid} from './helpers/run-hybrid.js'

/** 'R', 'S', 'T', 't', 'Z', …, or undefined once the process is gone. */
function processState(pid: number): string | undefined {
  try {
    return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1]
  } catch {
    return undefined
  }
}

const isGone = (pid: number) => ['Z', 'X', undefined].includes(processState(pid))

async function waitFor(what: string, condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(20)
  }
}

describe('exit status and signals pass through the interceptor', function () {
  this.timeout(60_000)
  let work: string
  const started: InterceptedProcess[] = []
  const children: ChildProcess[] = []
  const pidsToReap: number[] = []

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'hybrid-signals-test-'))
  })

  after(async () => {
    for (const p of started) p.kill('SIGKILL')
    for (const c of children) c.kill('SIGKILL')
    for (const pid of pidsToReap) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone, as it should be
      }
    }
    if (work) await rm(work, {recursive: true, force: true})
  })

  const spawnTraced = async (file: string, args: string[], stdout?: number) => {
    const traced = spawnIntercepted(file, args, {
      rules: await writeProcSysTree(join(work, 'tree')),
      ...(stdout ? {stdio: [0, stdout, 2]} : {}),
    })
    started.push(traced)
    return traced
  }

  it("hybrid exits with the command's exit code", async () => {
    const result = await runHybrid(['intercept', '--', 'sh', '-c', 'exit 42'])
    assert.equal(result.code, 42)
  })

  it("processes the command leaves behind are still served, and hybrid waits for them, then takes the command's status", async () => {
    const started = Date.now()
    const result = await runHybrid(['intercept', '--', 'sh', '-c', '(sleep 0.5; cat /proc/sys/kernel/panic) & exit 3'])
    assert.equal(result.code, 3)
    assert.equal(result.stdout, '10\n')
    assert.ok(Date.now() - started >= 500)
  })

  it('a command killed by SIGKILL ends hybrid with 137, and the API reports the signal', async () => {
    const cli = await runHybrid(['intercept', '--', 'sh', '-c', 'kill -KILL $$'])
    assert.equal(cli.code, 128 + 9)
    const traced = await spawnTraced('sleep', ['30'])
    await waitFor('sleep runs', () => processState(traced.pid) === 'S')
    process.kill(traced.pid, 'SIGKILL')
    assert.deepEqual(await traced.exited, {code: null, signal: 'SIGKILL'})
    await waitFor('no tracee is left', () => traced.counters().tracees === 0)
  })

  it('kill() signals the command, and does nothing once it has exited', async () => {
    const traced = await spawnTraced('sleep', ['30'])
    traced.kill()
    assert.deepEqual(await traced.exited, {code: null, signal: 'SIGTERM'})
    traced.kill('SIGKILL') // its pid may belong to another process by now: nothing is sent
  })

  it('SIGTERM sent to hybrid reaches the command, whose own exit status hybrid then takes', async () => {
    const script = 'trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.05; done'
    const hybrid = startHybrid(['intercept', '--', 'sh', '-c', script])
    children.push(hybrid.child)
    await hybrid.waitForStdout('ready')
    hybrid.child.kill('SIGTERM')
    const result = await hybrid.result
    assert.equal(result.stdout, 'ready\ngot TERM\n')
    assert.equal(result.code, 7)
  })

  it('a command stopped by SIGSTOP stays stopped (group-stop) until SIGCONT, then finishes', async () => {
    const out = join(work, 'stop.out')
    const fd = openSync(out, 'w')
    const traced = await spawnTraced('sh', ['-c', 'kill -STOP $$; echo resumed; cat /proc/sys/kernel/panic'], fd)
    closeSync(fd)
    await waitFor('it is stopped', () => ['T', 't'].includes(processState(traced.pid) ?? ''))
    await sleep(300)
    assert.ok(['T', 't'].includes(processState(traced.pid) ?? ''), 'still stopped')
    assert.equal(await readFile(out, 'utf8'), '')
    process.kill(traced.pid, 'SIGCONT')
    assert.deepEqual(await traced.exited, {code: 0, signal: null})
    assert.equal(await readFile(out, 'utf8'), 'resumed\n10\n')
    assert.ok(traced.counters().signals >= 2, 'SIGSTOP and SIGCONT were passed on')
  })

  it("when the tracer's process is killed, no traced process is left running (EXITKILL)", async () => {
    // A node process that runs `sh` under the interceptor; sh starts a background sleep and waits.
    const script = join(work, 'tracer.mjs')
    await writeFile(
      script,
      `import {spawnIntercepted} from ${JSON.stringify(join(REPO, 'dist/src/interceptor/index.js'))}
const traced = spawnIntercepted('sh', ['-c', 'sleep 300 & echo "child $$ grandchild $!"; wait'], {rules: []})
setInterval(() => {}, 1000)
`,
    )
    const tracer = spawn(process.execPath, [script], {stdio: ['ignore', 'pipe', 'inherit']})
    children.push(tracer)
    let stdout = ''
    tracer.stdout.on('data', (d) => (stdout += d))
    await waitFor('the tracee printed its pids', () => /grandchild \d+/.test(stdout))
    const [, child, grandchild] = /child (\d+) grandchild (\d+)/.exec(stdout)!.map(Number)
    pidsToReap.push(child, grandchild)
    assert.ok(!isGone(child) && !isGone(grandchild), 'both run')
    tracer.kill('SIGKILL')
    await waitFor('both traced processes are gone', () => isGone(child) && isGone(grandchild), 5000)
  })

  it('inside gVisor: a killed command, SIGTERM to hybrid, a group-stop, and a killed tracer', async function () {
    requireGvisor(this)
    this.timeout(180_000)
    const dir = join(work, 'gvisor')
    await mkdir(dir)
    // The test's own tree: hybrid's private one would outlive the SIGKILL of the last scene.
    const rules = (await writeProcSysTree(join(dir, 'tree'))).map((r) => `--rule ${r.from}=${r.to}`).join(' ')
    // One sandbox, four scenes; each waits on files the tracee writes, never on fixed delays.
    const script = `
      H="${process.execPath} ${HYBRID} intercept ${rules} --mode always --"
      D=${dir}
      until_file() { while [ ! -s "$1" ]; do sleep 0.05; done; }
      state() { awk '{print $3}' /proc/$1/stat 2>/dev/null || echo gone; }

      $H sh -c 'cat /proc/sys/vm/panic_on_oom; kill -KILL $$'; echo "sigkill exit $?"

      $H sh -c "trap 'echo got TERM; exit 7' TERM; echo > $D/ready; while :; do sleep 0.05; done" & h=$!
      until_file $D/ready; kill -TERM $h; wait $h; echo "sigterm exit $?"

      $H sh -c "echo \\$\\$ > $D/stopped; kill -STOP \\$\\$; echo resumed" & h=$!
      until_file $D/stopped; p=$(cat $D/stopped); sleep 0.5; echo "stopped state $(state $p)"
      kill -CONT $p; wait $h; echo "stop exit $?"

      $H sh -c "sleep 300 & echo \\$! > $D/grandchild; echo \\$\\$ > $D/child; wait" & h=$!
      until_file $D/child; until_file $D/grandchild; kill -KILL $h; wait $h
      sleep 1; echo "after the tracer: $(state $(cat $D/child)) $(state $(cat $D/grandchild))"
    `
    const result = await runInGvisor(['sh', '-c', script], {cwd: REPO, timeoutMs: 150_000})
    const lines = result.stdout.split('\n')
    assert.deepEqual(
      lines.slice(0, 5),
      ['0', 'sigkill exit 137', 'got TERM', 'sigterm exit 7', 'stopped state t'],
      result.stderr,
    )
    assert.deepEqual(lines.slice(5, 7), ['resumed', 'stop exit 0'])
    assert.match(lines[7], /^after the tracer: (gone|Z) (gone|Z)$/)
  })
})
