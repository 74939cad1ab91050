import assert from 'node:assert/strict'
import {closeSync, openSync} from 'node:fs'
import {mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {type InterceptedProcess, spawnIntercepted, writeProcSysTree} from '../../src/interceptor/index.js'
import {isAlive, within} from '../../src/util/processes.js'
import {requireGvisor} from '../helpers/gvisor.js'
import {requireRoot, requireTool} from '../helpers/requires.js'
import {runHybrid, runHybridInGvisor, trailingJson} from './helpers/run-hybrid.js'

describe('spawnIntercepted: options, live counters, and the fail-safe when a tracee drops the tree', function () {
  this.timeout(60_000)
  let work: string
  let tree: string
  const started: InterceptedProcess[] = []
  const leftovers: number[] = []

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'hybrid-api-test-'))
    tree = join(work, 'tree')
  })

  after(async () => {
    for (const p of started) p.killAll('SIGKILL')
    for (const pid of leftovers) if (await isAlive(pid)) process.kill(pid, 'SIGKILL')
    if (work) await rm(work, {recursive: true, force: true})
  })

  it('runs with the given env, cwd and stdio', async () => {
    const out = join(work, 'out')
    const fd = openSync(out, 'w')
    const traced = spawnIntercepted('sh', ['-c', 'echo "$GREETING from $(pwd)"; cat /proc/sys/vm/panic_on_oom'], {
      rules: await writeProcSysTree(tree),
      env: {GREETING: 'hello', PATH: process.env.PATH},
      cwd: work,
      stdio: [0, fd, 2],
    })
    closeSync(fd)
    started.push(traced)
    assert.deepEqual(await traced.exited, {code: 0, signal: null})
    assert.equal(await readFile(out, 'utf8'), `hello from ${work}\n0\n`)
  })

  it('counters: live tracee count, syscalls by name, rewrites by rule, stops', async () => {
    const traced = spawnIntercepted('sh', ['-c', 'cat /proc/sys/kernel/panic >/dev/null; sleep 2 & sleep 2 & wait'], {
      rules: await writeProcSysTree(tree),
    })
    started.push(traced)
    let most = 0
    while (most < 3) {
      most = Math.max(most, traced.counters().tracees)
      await sleep(20)
    }
    await traced.exited
    await traced.finished
    const c = traced.counters()
    assert.equal(c.tracees, 0, 'finished: nothing traced is left')
    assert.ok(most >= 3, 'sh and both sleeps were traced at once')
    assert.ok(c.syscalls.openat > 0 && c.syscalls.newfstatat > 0, JSON.stringify(c.syscalls))
    assert.deepEqual(c.rewrites, {'/proc/sys/kernel/panic': 1})
    assert.ok(c.stops >= Object.values(c.syscalls).reduce((a, b) => a + b, 0))
  })

  // The tree reaches tracees as an inherited descriptor; a process that closes it, or puts another
  // file at its number, gets the real path (fail safe), and the access is counted as missed.
  const dropTheTree = (how: string) =>
    `for fd in /proc/self/fd/*; do n=\${fd##*/}; [ "$(readlink $fd)" = "$TREE" ] && eval "exec $n${how}"; done; cat /proc/sys/hybrid-missed 2>&1 || true`

  it("a tracee that closes or replaces the tree's descriptor reaches the real path, counted as missed", async function () {
    requireTool(this, 'bash')
    await mkdir(join(work, 'dirtree'), {recursive: true})
    await writeFile(join(work, 'dirtree', 'hybrid-missed'), 'redirected\n')
    const rules = [{from: '/proc/sys', to: join(work, 'dirtree'), mode: 'always' as const}]
    for (const how of ['<&-', '</dev/null']) {
      const out = join(work, `missed${how.length}`)
      const fd = openSync(out, 'w')
      const traced = spawnIntercepted('bash', ['-c', `cat /proc/sys/hybrid-missed; ${dropTheTree(how)}`], {
        rules,
        env: {...process.env, TREE: join(work, 'dirtree')},
        stdio: [0, fd, 2],
      })
      closeSync(fd)
      started.push(traced)
      assert.deepEqual(await traced.exited, {code: 0, signal: null})
      const [first, second] = (await readFile(out, 'utf8')).split('\n')
      assert.equal(first, 'redirected')
      assert.match(second, /No such file or directory/, `after exec ${how}, the real (missing) path`)
      assert.deepEqual(traced.counters().missed, {'/proc/sys': 1})
      assert.deepEqual(traced.counters().rewrites, {'/proc/sys': 1})
    }
  })

  it('the same fail-safe inside gVisor (no kcmp there: the descriptor is compared by inode)', async function () {
    requireGvisor(this)
    requireTool(this, 'bash')
    const rules = ['--rule', `/proc/sys=${join(work, 'dirtree')}`, '--mode', 'always', '--stats', '--json']
    const script = `export TREE=${join(work, 'dirtree')}; cat /proc/sys/hybrid-missed; ${dropTheTree('<&-')}`
    const result = await runHybridInGvisor(['intercept', ...rules, '--', 'bash', '-c', script])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /^redirected\n.*No such file or directory/)
    assert.deepEqual(trailingJson(result.stderr).counters.missed, {'/proc/sys': 1})
  })

  it('the tracee holds one descriptor per target directory, inherited through exec, at high numbers', async () => {
    const traced = spawnIntercepted('sleep', ['5'], {rules: await writeProcSysTree(tree)})
    started.push(traced)
    await sleep(200)
    const fds = await Promise.all(
      (await readdir(`/proc/${traced.pid}/fd`)).map(
        async (n) => [Number(n), await readlink(`/proc/${traced.pid}/fd/${n}`)] as const,
      ),
    )
    const intoTree = fds.filter(([, target]) => target.startsWith(tree))
    assert.deepEqual(
      intoTree.map(([, t]) => t).sort(),
      [join(tree, 'kernel'), join(tree, 'kernel/keys'), join(tree, 'vm')].sort(),
    )
    for (const [n] of intoTree)
      assert.ok(n >= 1000, `descriptor ${n} is out of the way of the low numbers programs use`)
    traced.kill('SIGKILL')
    await traced.exited
  })

  it('the tracer is a process of its own, holding a pidfd for each traced process (killAll signals through them)', async () => {
    const pidFile = join(work, 'sleeps.pid')
    const traced = spawnIntercepted('sh', ['-c', `sleep 1000 & a=$!; sleep 1000 & echo "$a $!" > ${pidFile}; wait`], {
      rules: [],
    })
    started.push(traced)
    let sleeps = ''
    while (sleeps === '') {
      sleeps = (await readFile(pidFile, 'utf8').catch(() => '')).trim()
      await sleep(20)
    }
    leftovers.push(...sleeps.split(' ').map(Number))
    const tracer = Number(/^PPid:\s*(\d+)/m.exec(await readFile(`/proc/${traced.pid}/status`, 'utf8'))?.[1])
    assert.notEqual(tracer, process.pid, "the command's parent is the tracer process, not node")
    const pidfdTargets: number[] = []
    for (const fd of await readdir(`/proc/${tracer}/fd`)) {
      if ((await readlink(`/proc/${tracer}/fd/${fd}`).catch(() => '')) !== 'anon_inode:[pidfd]') continue
      const pid = /^Pid:\s*(-?\d+)/m.exec(await readFile(`/proc/${tracer}/fdinfo/${fd}`, 'utf8'))?.[1]
      pidfdTargets.push(Number(pid))
    }
    assert.deepEqual(
      pidfdTargets.sort((a, b) => a - b),
      [traced.pid, ...sleeps.split(' ').map(Number)].sort((a, b) => a - b),
    )
    assert.equal(traced.killAll('SIGKILL'), 3)
    assert.ok(await within(traced.finished, 10_000), 'nothing traced is left')
  })

  // CVE-2024-21626: a host directory's descriptor in a container's runc init became its working
  // directory (/proc/self/fd/N). A process leaving the rules' file system gets no rule target.
  const leaveTheRoot = (how: string) => `${how} sh -c 'readlink /proc/self/fd/1000 || echo dropped'`
  const holdsThenDrops = (ways: string[]) =>
    ['readlink /proc/self/fd/1000 >/dev/null && echo held', ...ways.map(leaveTheRoot)].join('; ')

  it('a process that changes its root or joins another mount namespace first loses the rule targets', async function () {
    requireRoot(this)
    requireTool(this, 'nsenter', 'util-linux')
    const result = await runHybrid([
      'intercept',
      '--',
      'sh',
      '-c',
      holdsThenDrops(['chroot /', 'nsenter --mount=/proc/self/ns/mnt']),
    ])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, 'held\ndropped\ndropped\n')
  })

  it('the same for chroot inside gVisor', async function () {
    requireGvisor(this)
    const result = await runHybridInGvisor(['intercept', '--', 'sh', '-c', holdsThenDrops(['chroot /'])])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, 'held\ndropped\n')
  })

  it('killAll ends the command and what it left behind; finished settles after', async () => {
    const pidFile = join(work, 'leftover.pid')
    const traced = spawnIntercepted('sh', ['-c', `sleep 1000 & echo $! > ${pidFile}; exec sleep 1000`], {
      rules: await writeProcSysTree(tree),
    })
    started.push(traced)
    let leftover = 0
    while (leftover === 0) {
      leftover = Number(await readFile(pidFile, 'utf8').catch(() => '0'))
      await sleep(20)
    }
    leftovers.push(leftover)
    assert.ok(await isAlive(leftover), 'the background sleep runs')
    assert.equal(traced.killAll('SIGTERM'), 2, 'two processes: the command and the sleep it left')
    assert.deepEqual(await traced.exited, {code: null, signal: 'SIGTERM'})
    assert.ok(await within(traced.finished, 10_000), 'nothing traced is left')
    assert.equal(await isAlive(leftover), false, 'the background sleep was ended too')
    assert.equal(traced.killAll('SIGKILL'), 0, 'once none is left there is nothing to signal')
  })
})
