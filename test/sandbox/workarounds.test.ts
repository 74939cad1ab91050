import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {lstat, mkdtemp, readdir, readFile, readlink, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {KUBELET_TUNABLES} from '../../src/interceptor/index.js'
import {findProgram} from '../../src/sandbox/probes/find-program.js'
import {type MountEntry, parseMountinfo} from '../../src/sandbox/probes/mountinfo.js'
import {cnibin} from '../../src/sandbox/workarounds/cnibin.js'
import {hostLegacyPrograms, iptables} from '../../src/sandbox/workarounds/iptables.js'
import {bindNullIntent, bindNullOver, undoBindNull} from '../../src/sandbox/workarounds/kmsg.js'
import {procsys} from '../../src/sandbox/workarounds/procsys.js'
import type {AppliedRecord, WorkaroundContext} from '../../src/sandbox/workarounds/workaround.js'
import {requireGvisor, runInGvisor} from '../helpers/gvisor.js'
import {requireRoot, skipUnless} from '../helpers/requires.js'

/**
 * The workarounds that change the machine, applied and undone for real: kmsg's bind mount and procsys's
 * fake tree inside gVisor (where they are needed), and on this machine on paths the test owns.
 */
const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const DIST = join(REPO, 'dist', 'src')

function mountsAt(path: string): ReturnType<typeof parseMountinfo> {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountPoint === path)
}

/** Run an ES module body inside gVisor with node; it prints one JSON document. */
async function nodeInGvisor(body: string): Promise<Record<string, unknown>> {
  const run = await runInGvisor(['node', '--input-type=module', '-e', body], {
    network: 'none',
    cwd: REPO,
    timeoutMs: 180_000,
  })
  assert.equal(run.code, 0, `node in gVisor failed: ${run.stderr}`)
  return JSON.parse(run.stdout) as Record<string, unknown>
}

describe('workarounds inside gVisor', function () {
  this.timeout(300_000)
  let dir: string
  before(async function () {
    requireGvisor(this)
    skipUnless(
      this,
      existsSync(join(DIST, 'sandbox', 'workarounds', 'kmsg.js')),
      'the workarounds are not compiled (npx tsc -p .)',
    )
    dir = await mkdtemp(join(tmpdir(), 'hybrid-workarounds-gvisor-'))
  })
  after(async () => {
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('kmsg: apply creates /dev/kmsg and bind-mounts /dev/null on it; undo leaves no mount and no file', async () => {
    const out = await nodeInGvisor(`
      import {readFileSync, existsSync} from 'node:fs'
      import {kmsg} from '${DIST}/sandbox/workarounds/kmsg.js'
      import {mountsAt, parseMountinfo} from '${DIST}/sandbox/probes/mountinfo.js'
      const ctx = {dataDir: '${dir}', agent: true, networkMode: 'tunnel', workDir: '${dir}/work'}
      const mounts = () => mountsAt(parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')), '/dev/kmsg')
      const out = {}
      out.before = await kmsg.probe(ctx)
      out.record = await kmsg.apply(ctx)
      out.mountsApplied = mounts()
      out.probeApplied = await kmsg.probe(ctx)
      out.again = await kmsg.apply(ctx)
      await kmsg.undo(out.record)
      out.mountsUndone = mounts()
      out.existsUndone = existsSync('/dev/kmsg')
      out.probeUndone = await kmsg.probe(ctx)
      await kmsg.undo(out.record)
      console.log(JSON.stringify(out))
    `)
    process.stdout.write(`      ${JSON.stringify(out)}\n`)
    assert.deepEqual(out.before, {found: true, evidence: '/dev/kmsg does not open: ENOENT (no such device)'})
    const record = out.record as AppliedRecord
    assert.equal(record.id, 'kmsg')
    assert.equal(record.details.path, '/dev/kmsg')
    assert.equal(record.details.created, true, 'gVisor has no /dev/kmsg: hybrid created it')
    assert.equal(record.details.mounted, true)
    const applied = out.mountsApplied as MountEntry[]
    assert.equal(applied.length, 1)
    assert.equal(applied[0].root, '/null', 'the mount on /dev/kmsg is /dev/null')
    assert.equal(applied[0].id, record.details.mountId)
    assert.deepEqual(out.probeApplied, {found: false, evidence: '/dev/kmsg opens for reading'})
    assert.equal((out.again as AppliedRecord).details.mounted, false, 'applying twice mounts nothing more')
    assert.deepEqual(out.mountsUndone, [], 'no bind mount left on /dev/kmsg')
    assert.equal(out.existsUndone, false, 'the file hybrid created is gone')
    assert.equal((out.probeUndone as {found: boolean}).found, true)
  })

  it('procsys: the fake tree and the rules make all six tunables readable and writable under the interceptor', async () => {
    const workDir = join(dir, 'work')
    const outFile = join(dir, 'intercepted.out')
    const out = await nodeInGvisor(`
      import {openSync, closeSync, readFileSync, existsSync} from 'node:fs'
      import {procsys} from '${DIST}/sandbox/workarounds/procsys.js'
      import {spawnIntercepted} from '${DIST}/interceptor/index.js'
      const ctx = {dataDir: '${dir}', agent: true, networkMode: 'tunnel', workDir: '${workDir}'}
      const out = {}
      out.before = await procsys.probe(ctx)
      const record = await procsys.apply(ctx)
      out.record = record
      const rules = procsys.interceptRules(ctx, record)
      const fd = openSync('${outFile}', 'w')
      const script = 'for f in vm/panic_on_oom kernel/panic kernel/keys/root_maxbytes; do cat /proc/sys/$f; done; echo 1 > /proc/sys/vm/overcommit_memory && cat /proc/sys/vm/overcommit_memory'
      const child = spawnIntercepted('sh', ['-c', script], {rules, stdio: [0, fd, fd]})
      out.status = await child.exited
      out.rewrites = child.counters().rewrites
      closeSync(fd)
      out.output = readFileSync('${outFile}', 'utf8')
      await procsys.undo(record)
      out.treeAfterUndo = existsSync(record.details.dir)
      console.log(JSON.stringify(out))
    `)
    process.stdout.write(`      ${JSON.stringify({status: out.status, output: out.output, rewrites: out.rewrites})}\n`)
    assert.equal((out.before as {found: boolean}).found, true)
    const record = out.record as AppliedRecord
    assert.equal(record.details.dir, join(workDir, 'proc-sys'))
    assert.deepEqual(
      record.details.rules,
      KUBELET_TUNABLES.map(({path}) => ({
        from: path,
        to: join(workDir, 'proc-sys', path.slice('/proc/sys/'.length)),
        mode: 'always',
      })),
    )
    assert.deepEqual(out.status, {code: 0, signal: null})
    assert.equal(
      out.output,
      '0\n10\n25000000\n1\n',
      "the kubelet's values, and its write to vm/overcommit_memory lands in the fake tree",
    )
    assert.ok(Object.keys(out.rewrites as object).includes('/proc/sys/vm/overcommit_memory'))
    assert.equal(out.treeAfterUndo, false)
  })
})

describe('workarounds on this machine (paths the test owns)', function () {
  this.timeout(60_000)
  let dir: string
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'hybrid-workarounds-'))))
  afterEach(async () => {
    if (!dir) return
    // Mounts a failed test left, found by the test's own directory, topmost first.
    for (let stack = mountsUnder(dir); stack.length > 0; stack = mountsUnder(dir)) spawnSync('umount', [stack[0]])
    await rm(dir, {recursive: true, force: true})
  })
  function mountsUnder(root: string): string[] {
    return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))
      .map((m) => m.mountPoint)
      .filter((p) => p.startsWith(`${root}/`))
      .reverse()
  }
  const ctx = (): WorkaroundContext => ({
    dataDir: join(dir, 'data'),
    agent: true,
    networkMode: 'tunnel',
    workDir: join(dir, 'work'),
  })

  it('the /dev/null bind (kmsg) creates and removes only what it made', async function () {
    requireRoot(this)
    const missing = join(dir, 'kmsg')
    const record = {id: 'kmsg' as const, details: {...(await bindNullOver(missing))}}
    assert.deepEqual({created: record.details.created, mounted: record.details.mounted}, {created: true, mounted: true})
    assert.equal(mountsAt(missing).at(-1)?.root, '/null')
    assert.equal(readFileSync(missing, 'utf8'), '', 'reads as /dev/null')
    await undoBindNull(record)
    assert.deepEqual(mountsAt(missing), [])
    assert.equal(existsSync(missing), false)
    await undoBindNull(record) // twice is fine

    const existing = join(dir, 'existing')
    await writeFile(existing, 'keep me')
    const second = {id: 'kmsg' as const, details: {...(await bindNullOver(existing))}}
    assert.equal(second.details.created, false)
    await undoBindNull(second)
    assert.deepEqual(mountsAt(existing), [])
    assert.equal(readFileSync(existing, 'utf8'), 'keep me', 'a file hybrid did not create stays')
  })

  it('the /dev/null bind interrupted at any point (SIGKILL): undo from the intent recorded before it leaves neither file nor mount', async function () {
    requireRoot(this)
    const path = join(dir, 'kmsg-interrupted')
    const intent = async () => ({id: 'kmsg' as const, details: {...(await bindNullIntent(path))}})
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['before anything', async () => undefined],
      ['after the file was created', () => writeFile(path, '', {flag: 'wx', mode: 0o600})],
      ['after the mount, before its record', () => bindNullOver(path)],
    ]
    for (const [when, partly] of steps) {
      const recorded = await intent()
      assert.deepEqual(recorded.details, {path, created: true, mounted: true}, when)
      await partly()
      await undoBindNull(recorded)
      assert.deepEqual(mountsAt(path), [], `no mount left when interrupted ${when}`)
      assert.equal(existsSync(path), false, `no file left when interrupted ${when}`)
    }
    // Something mounted there already: the intent is to change nothing, and undo leaves that mount.
    await writeFile(path, '')
    execFileSync('mount', ['--bind', '/dev/zero', path])
    try {
      const recorded = await intent()
      assert.deepEqual(recorded.details, {path, created: false, mounted: false})
      await undoBindNull(recorded)
      assert.equal(mountsAt(path).length, 1, "another's mount stays")
    } finally {
      execFileSync('umount', [path])
    }
  })

  it('the /dev/null bind is not undone from under a mount someone stacked on it', async function () {
    requireRoot(this)
    const path = join(dir, 'kmsg')
    const record = {id: 'kmsg' as const, details: {...(await bindNullOver(path))}}
    execFileSync('mount', ['--bind', '/dev/zero', path])
    await assert.rejects(undoBindNull(record), /something else is mounted on .* over hybrid's bind mount/)
    assert.equal(mountsAt(path).length, 2, 'both mounts left as they were')
    execFileSync('umount', [path])
    await undoBindNull(record)
    assert.deepEqual(mountsAt(path), [])
    assert.equal(existsSync(path), false)
  })

  it('procsys writes the tree with the kubelet values and its six always-rules; undo removes only that tree', async () => {
    const record = await procsys.apply(ctx())
    for (const {path, value} of KUBELET_TUNABLES)
      assert.equal(await readFile(join(dir, 'work', 'proc-sys', path.slice('/proc/sys/'.length)), 'utf8'), `${value}\n`)
    assert.deepEqual(
      procsys.interceptRules!(ctx(), record).map((r) => [r.from, r.mode]),
      KUBELET_TUNABLES.map(({path}) => [path, 'always']),
    )
    await writeFile(join(dir, 'work', 'other'), 'not procsys')
    await procsys.undo(record)
    assert.deepEqual(await readdir(join(dir, 'work')), ['other'])
    // A corrupt record never makes undo remove anything else.
    await procsys.undo({id: 'procsys', details: {dir: join(dir, 'work')}})
    assert.deepEqual(await readdir(join(dir, 'work')), ['other'])
  })

  it('iptables puts wrappers that run the legacy backend first on PATH', async function () {
    skipUnless(this, hostLegacyPrograms().length > 0, 'iptables-legacy is not installed (apt-get install iptables)')
    const record = await iptables.apply(ctx())
    const pathDir = record.details.dir as string
    assert.equal(iptables.environment!(ctx(), record).PATH.split(':')[0], pathDir)
    assert.deepEqual(
      iptables.serverConfig(ctx()),
      {},
      'the machine has the legacy programs: k3s need not prefer its own',
    )
    assert.match(execFileSync(join(pathDir, 'iptables'), ['-V'], {encoding: 'utf8'}), /\(legacy\)/)
    assert.match(
      execFileSync('sh', ['-c', 'iptables-save -V'], {
        encoding: 'utf8',
        env: {...process.env, ...iptables.environment!(ctx(), record)},
      }),
      /legacy/,
    )
    assert.ok((await lstat(join(pathDir, 'iptables'))).isFile(), 'a real file, not a symlink')
    await iptables.undo(record)
    assert.equal(existsSync(pathDir), false)
  })

  it('cnibin has k3s unpack, turns the CNI symlinks into real files, and undo restores them', async function () {
    const truePath = findProgram('true')
    skipUnless(this, truePath !== undefined, 'no `true` program')
    const data = ctx().dataDir
    const log = join(dir, 'k3s-calls')
    // A k3s that unpacks as the real one does: data/<hash>/bin with `cni` and symlinks to it, data/cni, data/current.
    const fakeK3s = join(dir, 'k3s')
    await writeFile(
      fakeK3s,
      `#!/bin/sh\necho "$*" >> ${log}\nD="$2"; H="$D/data/0123abcd"\nmkdir -p "$H/bin" "$D/data/cni"\ncp ${truePath} "$H/bin/cni"; echo k3s > "$H/bin/k3s"\n` +
        `ln -s cni "$H/bin/host-local"; ln -s cni "$H/bin/bridge"; ln -s k3s "$H/bin/kubectl"\n` +
        `ln -s "$H/bin/cni" "$D/data/cni/cni"; ln -s "$H/bin/cni" "$D/data/cni/host-local"; ln -s "$H" "$D/data/current"\n`,
      {mode: 0o755},
    )
    const record = await cnibin.apply({...ctx(), k3sBinary: fakeK3s})
    assert.equal(
      await readFile(log, 'utf8'),
      `--data-dir ${data} kubectl version --client\n`,
      'k3s was asked to unpack into the data dir',
    )
    const bin = join(data, 'data', '0123abcd', 'bin')
    const replaced = (record.details.replaced as Array<{path: string; target: string}>)
      .map((r) => [r.path, r.target])
      .sort()
    assert.deepEqual(
      replaced,
      [
        [join(bin, 'bridge'), 'cni'],
        [join(bin, 'host-local'), 'cni'],
        [join(data, 'data', 'cni', 'cni'), join(bin, 'cni')],
        [join(data, 'data', 'cni', 'host-local'), join(bin, 'cni')],
      ].sort(),
    )
    for (const [path] of replaced) {
      assert.ok((await lstat(path)).isFile(), `${path} is a real file`)
      assert.equal(spawnSync(path).status, 0, `${path} runs`)
    }
    assert.equal(await readlink(join(bin, 'kubectl')), 'k3s', 'symlinks to other programs are left alone')
    assert.ok((await lstat(join(data, 'data', 'current'))).isSymbolicLink())

    const again = await cnibin.apply({...ctx(), k3sBinary: fakeK3s})
    assert.deepEqual(again.details.replaced, [], 'nothing left to replace')
    assert.equal((await readFile(log, 'utf8')).split('\n').length - 1, 1, 'k3s is not asked to unpack again')

    await cnibin.undo(record)
    for (const [path, target] of replaced) assert.equal(await readlink(path), target, `${path} is a symlink again`)
  })
})
