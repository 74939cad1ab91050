import assert from 'node:assert/strict'
import {access, constants, mkdir, mkdtemp, readdir, readFile, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {KUBELET_TUNABLES, writeProcSysTree} from '../../src/interceptor/index.js'
import {pidNamespaceId} from '../../src/util/processes.js'
import {requireGvisor, runInGvisor} from '../helpers/gvisor.js'
import {HYBRID, REPO, runHybrid, startHybrid} from './helpers/run-hybrid.js'

const EXPECTED = {
  '/proc/sys/vm/overcommit_memory': '1',
  '/proc/sys/vm/panic_on_oom': '0',
  '/proc/sys/kernel/panic': '10',
  '/proc/sys/kernel/panic_on_oops': '1',
  '/proc/sys/kernel/keys/root_maxkeys': '1000000',
  '/proc/sys/kernel/keys/root_maxbytes': '25000000',
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  )
const leftoverTrees = async () => (await readdir(tmpdir())).filter((name) => name.startsWith('hybrid-procsys-'))

describe("the default rule set: the kubelet's six tunables in a tree hybrid writes", function () {
  this.timeout(120_000)
  let dir: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-tree-test-'))
  })

  const orphanedTrees: string[] = []

  after(async () => {
    if (dir) await rm(dir, {recursive: true, force: true})
    for (const name of orphanedTrees) await rm(join(tmpdir(), name), {recursive: true, force: true})
  })

  it('KUBELET_TUNABLES holds the six paths with the values of the issue', () => {
    assert.deepEqual(Object.fromEntries(KUBELET_TUNABLES.map((t) => [t.path, t.value])), EXPECTED)
  })

  it('writeProcSysTree writes one writable file per tunable and returns six always rules into it', async () => {
    const rules = await writeProcSysTree(dir)
    assert.equal(rules.length, 6)
    for (const rule of rules) {
      assert.equal(rule.mode, 'always')
      assert.equal(rule.to, join(dir, rule.from.slice('/proc/sys/'.length)))
      assert.equal(await readFile(rule.to, 'utf8'), `${EXPECTED[rule.from as keyof typeof EXPECTED]}\n`)
      assert.equal((await stat(rule.to)).mode & 0o777, 0o644)
      await access(rule.to, constants.W_OK)
    }
  })

  it('hybrid intercept without --rule serves the six values on the host (whatever the host has) and removes its tree', async () => {
    const before = await leftoverTrees()
    const result = await runHybrid(['intercept', '--', 'cat', ...Object.keys(EXPECTED)])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(
      result.stdout,
      Object.values(EXPECTED)
        .map((v) => `${v}\n`)
        .join(''),
    )
    assert.deepEqual(await leftoverTrees(), before)
  })

  it('a tree left by a SIGKILLed hybrid intercept is removed by the next run', async () => {
    const before = await leftoverTrees()
    const killed = startHybrid(['intercept', '--', 'sh', '-c', 'echo started; exec sleep 1000'])
    await killed.waitForStdout('started')
    const orphans = (await leftoverTrees()).filter((name) => !before.includes(name))
    orphanedTrees.push(...orphans)
    const pidns = await pidNamespaceId()
    assert.deepEqual(
      orphans.map((name) => name.startsWith(`hybrid-procsys-${pidns}-${killed.child.pid}-`)),
      [true],
      'one tree, named for its owner',
    )
    killed.child.kill('SIGKILL')
    assert.equal((await killed.result).signal, 'SIGKILL')
    assert.ok(await exists(join(tmpdir(), orphans[0])), 'a SIGKILLed hybrid cannot remove its tree')
    // A tree of another pid namespace (a sandbox sharing /tmp) is not this run's to judge.
    const foreign = `hybrid-procsys-1-${killed.child.pid}-foreign`
    orphanedTrees.push(foreign)
    await mkdir(join(tmpdir(), foreign))
    const next = await runHybrid(['intercept', '--', 'true'])
    assert.equal(next.code, 0, next.stderr)
    assert.equal(await exists(join(tmpdir(), orphans[0])), false, 'the next run removed the orphaned tree')
    assert.ok(await exists(join(tmpdir(), foreign)), "the other namespace's tree stays")
  })

  it('hybrid intercept without --rule serves the six values inside gVisor, which lacks most of them', async function () {
    requireGvisor(this)
    // In one sandbox: first without hybrid (the file is missing), then under it (test -e: a redirected stat).
    const inner = [
      'sh',
      '-c',
      'cat "$@"; test -e /proc/sys/vm/panic_on_oom && echo "now there"',
      'sh',
      ...Object.keys(EXPECTED),
    ]
    const result = await runInGvisor(
      [
        'sh',
        '-c',
        'test -e /proc/sys/vm/panic_on_oom || echo "gVisor lacks vm/panic_on_oom"; exec "$@"',
        'sh',
        process.execPath,
        HYBRID,
        'intercept',
        '--',
        ...inner,
      ],
      {cwd: REPO},
    )
    assert.equal(result.code, 0, result.stderr)
    assert.equal(
      result.stdout,
      `gVisor lacks vm/panic_on_oom\n${Object.values(EXPECTED)
        .map((v) => `${v}\n`)
        .join('')}now there\n`,
    )
  })
})
