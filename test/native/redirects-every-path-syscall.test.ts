import assert from 'node:assert/strict'
import {chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

import {requireGvisor, runInGvisor} from '../helpers/gvisor.js'
import {requireRoot, requireTool} from '../helpers/requires.js'
import {HYBRID, REPO, runHybrid, trailingJson} from './helpers/run-hybrid.js'
import {TraceeBuilds} from './helpers/tracees.js'

/** What path-syscalls prints for one path: the content read and the inode each stat call saw. */
interface Reach {
  path: string
  open: string
  openat: string
  stat: number
  lstat: number
  newfstatat: number
  statx: number
  access: number
  faccessat: number
  write?: number
  truncate?: number
}

const TUNABLES = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
]

function parseReaches(stdout: string): Reach[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{"path"'))
    .map((l) => JSON.parse(l) as Reach)
}

/** Every syscall of `reach` saw `content` and the file with inode `ino`. */
function assertReached(reach: Reach, content: string, ino: number, where: string): void {
  assert.equal(reach.open, content, `open(${reach.path}) ${where}`)
  assert.equal(reach.openat, content, `openat(${reach.path}) ${where}`)
  for (const call of ['stat', 'lstat', 'newfstatat', 'statx'] as const)
    assert.equal(reach[call], ino, `${call}(${reach.path}) ${where}`)
  assert.equal(reach.access, 0, `access(${reach.path})`)
  assert.equal(reach.faccessat, 0, `faccessat(${reach.path})`)
}

describe('the interceptor redirects reads and writes of rule paths through every path syscall', function () {
  this.timeout(240_000)
  let builds: TraceeBuilds
  let pathSyscalls: string
  let work: string
  let tree: string // a fake /proc/sys whose files say which file they are

  before(async function () {
    requireTool(this, 'cc', 'gcc')
    builds = await TraceeBuilds.create()
    pathSyscalls = await builds.c('path-syscalls')
    work = await mkdtemp(join(tmpdir(), 'hybrid-redirect-test-'))
    tree = join(work, 'sys')
  })

  // Each test starts from the same fake tree, whatever the one before wrote into it.
  beforeEach(async () => {
    for (const t of [...TUNABLES, 'hybrid-test/absent']) {
      await mkdir(dirname(join(tree, t)), {recursive: true})
      await writeFile(join(tree, t), `fake ${t}\n`)
    }
  })

  after(async () => {
    await builds?.remove()
    if (work) await rm(work, {recursive: true, force: true})
  })

  const alwaysRules = () => TUNABLES.flatMap((t) => ['--rule', `/proc/sys/${t}=${join(tree, t)}`])

  describe('on the host', () => {
    it('mode always: open, openat, stat, lstat, newfstatat, statx, access and faccessat all reach the fake file', async () => {
      const result = await runHybrid([
        'intercept',
        ...alwaysRules(),
        '--mode',
        'always',
        '--stats',
        '--json',
        '--',
        pathSyscalls,
        ...TUNABLES.map((t) => `/proc/sys/${t}`),
      ])
      assert.equal(result.code, 0, result.stderr)
      const reaches = parseReaches(result.stdout)
      assert.equal(reaches.length, TUNABLES.length)
      for (const [i, t] of TUNABLES.entries())
        assertReached(reaches[i], `fake ${t}\n`, (await stat(join(tree, t))).ino, 'in always mode')
      const {counters} = trailingJson(result.stderr)
      for (const t of TUNABLES) assert.equal(counters.rewrites[`/proc/sys/${t}`], 8, `rewrites of /proc/sys/${t}`)
    })

    it('mode always: writes land in the fake file (the real one keeps its value)', async () => {
      for (const t of TUNABLES) {
        const real = await readFile(`/proc/sys/${t}`, 'utf8')
        await writeFile(join(tree, t), 'before\n')
        // The value written is the real file's own, so a write that escaped would change nothing.
        const result = await runHybrid([
          'intercept',
          '--rule',
          `/proc/sys/${t}=${join(tree, t)}`,
          '--mode',
          'always',
          '--',
          pathSyscalls,
          '-w',
          real,
          `/proc/sys/${t}`,
        ])
        assert.equal(result.code, 0, result.stderr)
        assert.equal(parseReaches(result.stdout)[0].write, real.length)
        assert.equal(await readFile(join(tree, t), 'utf8'), real, `the write to /proc/sys/${t} went to the fake tree`)
      }
    })

    it('truncate(2), which has no *at form, truncates the fake file (the tracer makes the call)', async () => {
      const real = await readFile('/proc/sys/vm/panic_on_oom', 'utf8')
      const result = await runHybrid([
        'intercept',
        ...alwaysRules(),
        '--mode',
        'always',
        '--stats',
        '--json',
        '--',
        pathSyscalls,
        '-t',
        '4',
        '/proc/sys/vm/panic_on_oom',
      ])
      assert.equal(result.code, 0, result.stderr)
      assert.equal(parseReaches(result.stdout)[0].truncate, 0)
      assert.equal(await readFile(join(tree, 'vm/panic_on_oom'), 'utf8'), 'fake', 'the fake file, cut to 4 bytes')
      assert.equal(await readFile('/proc/sys/vm/panic_on_oom', 'utf8'), real)
      assert.equal(
        trailingJson(result.stderr).counters.rewrites['/proc/sys/vm/panic_on_oom'],
        9,
        'eight calls redirected, one made for the tracee',
      )
    })

    it("truncate(2) is made with the calling process's credentials: a user who may not write the fake file gets EACCES", async function () {
      requireTool(this, 'setpriv', 'util-linux')
      requireRoot(this) // taking on another user's ids needs root
      await chmod(builds.dir, 0o755) // so that nobody can run the tracee
      const result = await runHybrid([
        'intercept',
        ...alwaysRules(),
        '--mode',
        'always',
        '--',
        'setpriv',
        '--reuid=nobody',
        '--regid=nogroup',
        '--clear-groups',
        pathSyscalls,
        '-t',
        '4',
        '/proc/sys/vm/panic_on_oom',
      ])
      assert.equal(result.code, 0, result.stderr)
      assert.equal(parseReaches(result.stdout)[0].truncate, -13, "EACCES: the fake file is root's, mode 644")
      assert.equal(await readFile(join(tree, 'vm/panic_on_oom'), 'utf8'), 'fake vm/panic_on_oom\n', 'left whole')
    })

    it("mode missing: whether the real path exists is judged in the calling process's mount namespace", async function () {
      requireTool(this, 'unshare', 'util-linux')
      requireRoot(this) // a mount namespace of its own needs root
      // In the tracee's own mount namespace, a bind mount puts a real file where the tracer sees none.
      const shadowed = join(work, 'shadowed')
      const real = join(work, 'real')
      await mkdir(shadowed, {recursive: true})
      await mkdir(real, {recursive: true})
      await writeFile(join(real, 'present'), 'real present\n')
      const fake = join(work, 'fake-shadowed')
      await mkdir(fake, {recursive: true})
      await writeFile(join(fake, 'present'), 'fake present\n')
      await writeFile(join(fake, 'absent'), 'fake absent\n')
      const script = `mount --bind ${real} ${shadowed} && cat ${shadowed}/present ${shadowed}/absent`
      const result = await runHybrid([
        'intercept',
        '--rule',
        `${shadowed}=${fake}`,
        '--',
        'unshare',
        '-m',
        'sh',
        '-c',
        script,
      ])
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, 'real present\nfake absent\n')
    })

    it('mode missing: an existing real file is read from the real one, a missing one from the fake tree', async () => {
      const result = await runHybrid([
        'intercept',
        '--rule',
        `/proc/sys=${tree}`,
        '--',
        pathSyscalls,
        '/proc/sys/vm/overcommit_memory',
        '/proc/sys/hybrid-test/absent',
      ])
      assert.equal(result.code, 0, result.stderr)
      const [real, missing] = parseReaches(result.stdout)
      assertReached(
        real,
        await readFile('/proc/sys/vm/overcommit_memory', 'utf8'),
        (await stat('/proc/sys/vm/overcommit_memory')).ino,
        'for a real file',
      )
      assertReached(
        missing,
        'fake hybrid-test/absent\n',
        (await stat(join(tree, 'hybrid-test', 'absent'))).ino,
        'for a missing file',
      )
    })

    it('follows a shell pipeline into every child it spawns', async () => {
      const script = [
        'cat /proc/sys/vm/panic_on_oom | tr a-z A-Z',
        '(cat /proc/sys/kernel/panic; head -c 5 /proc/sys/kernel/panic; echo) | sort | uniq -c | sed "s/^ *//"',
        'wc -c < /proc/sys/kernel/keys/root_maxkeys',
        'cat /proc/sys/kernel/ostype 2>/dev/null || echo no ostype in the fake tree',
      ].join('; ')
      const result = await runHybrid([
        'intercept',
        '--rule',
        `/proc/sys=${tree}`,
        '--mode',
        'always',
        '--stats',
        '--json',
        '--',
        'sh',
        '-c',
        script,
      ])
      assert.equal(result.code, 0, result.stderr)
      // kernel/ostype is not in the fake tree, and `always` redirects it there anyway
      assert.equal(
        result.stdout,
        `FAKE VM/PANIC_ON_OOM\n1 fake \n1 fake kernel/panic\n${'fake kernel/keys/root_maxkeys\n'.length}\nno ostype in the fake tree\n`,
      )
      const {counters} = trailingJson(result.stderr)
      assert.equal(counters.rewrites['/proc/sys'], 5) // panic_on_oom, panic twice, root_maxkeys, ostype
      assert.equal(counters.tracees, 0)
    })
  })

  describe('relative paths, on the host', () => {
    const fake = (t: string) => `fake ${t}\n`
    const fakeIno = async (t: string) => (await stat(join(tree, t))).ino

    it("are resolved in the working directory, or in the directory of the *at call's descriptor", async () => {
      const inCwd = await runHybrid([
        'intercept',
        ...alwaysRules(),
        '--mode',
        'always',
        '--',
        'sh',
        '-c',
        `cd /proc/sys && exec ${shellWords([pathSyscalls, ...TUNABLES])}`,
      ])
      assert.equal(inCwd.code, 0, inCwd.stderr)
      for (const [i, t] of TUNABLES.entries())
        assertReached(parseReaches(inCwd.stdout)[i], fake(t), await fakeIno(t), 'relative to the working directory')

      // Working directory /, descriptor /proc/sys/vm: the *at calls find the fake file, the old ones look in /.
      const inDir = await runHybrid([
        'intercept',
        ...alwaysRules(),
        '--mode',
        'always',
        '--',
        'sh',
        '-c',
        `cd / && exec ${shellWords([pathSyscalls, '-d', '/proc/sys/vm', 'panic_on_oom'])}`,
      ])
      assert.equal(inDir.code, 0, inDir.stderr)
      const [reach] = parseReaches(inDir.stdout)
      assert.equal(reach.openat, fake('vm/panic_on_oom'))
      for (const call of ['newfstatat', 'statx'] as const)
        assert.equal(reach[call], await fakeIno('vm/panic_on_oom'), call)
      assert.equal(reach.faccessat, 0)
      assert.deepEqual(reach.open, {errno: 2}, 'open("panic_on_oom") in / finds nothing, as without hybrid')
    })

    it('a directory rule: a remainder that begins in the working directory goes to the real file, counted as missed', async () => {
      const script = `cd /proc/sys && ${shellWords([pathSyscalls, 'vm/panic_on_oom'])} && cd vm && exec ${shellWords([pathSyscalls, 'panic_on_oom'])}`
      const result = await runHybrid([
        'intercept',
        '--rule',
        `/proc/sys=${tree}`,
        '--mode',
        'always',
        '--stats',
        '--json',
        '--',
        'sh',
        '-c',
        script,
      ])
      assert.equal(result.code, 0, result.stderr)
      const [spansTheRule, insideTheRule] = parseReaches(result.stdout)
      assertReached(
        spansTheRule,
        fake('vm/panic_on_oom'),
        await fakeIno('vm/panic_on_oom'),
        'for vm/panic_on_oom in /proc/sys',
      )
      // The redirect points into the tracee's own string, which holds no "vm/": the real file, counted.
      assertReached(
        insideTheRule,
        await readFile('/proc/sys/vm/panic_on_oom', 'utf8'),
        (await stat('/proc/sys/vm/panic_on_oom')).ino,
        'for panic_on_oom in /proc/sys/vm',
      )
      const {counters} = trailingJson(result.stderr)
      assert.equal(counters.rewrites['/proc/sys'], 8)
      assert.equal(counters.missed['/proc/sys'], 8)
    })

    it('a path with a ".." component goes to the real file (the kernel resolves ".." after symlinks)', async () => {
      const result = await runHybrid([
        'intercept',
        ...alwaysRules(),
        '--mode',
        'always',
        '--',
        'sh',
        '-c',
        `cd /proc/sys/kernel && exec ${shellWords([pathSyscalls, '../vm/panic_on_oom'])}`,
      ])
      assert.equal(result.code, 0, result.stderr)
      assertReached(
        parseReaches(result.stdout)[0],
        await readFile('/proc/sys/vm/panic_on_oom', 'utf8'),
        (await stat('/proc/sys/vm/panic_on_oom')).ino,
        'for ../vm/panic_on_oom',
      )
    })
  })

  describe('inside gVisor', () => {
    before(function () {
      requireGvisor(this)
    })

    // gVisor numbers inodes per sandbox, so the reference (the files reached without hybrid) is taken
    // in the same sandbox, just before the intercepted run.
    async function inOneSandbox(
      reference: string[],
      hybridArgs: string[],
    ): Promise<{reference: Reach[]; intercepted: Reach[]; stderr: string}> {
      const script = `${shellWords(reference)} && echo ---- && exec ${shellWords([process.execPath, HYBRID, ...hybridArgs])}`
      const result = await runInGvisor(['sh', '-c', script], {cwd: REPO, timeoutMs: 180_000})
      assert.equal(result.code, 0, result.stderr)
      const [before, after] = result.stdout.split('----\n')
      return {reference: parseReaches(before), intercepted: parseReaches(after), stderr: result.stderr}
    }

    it('mode always: every path syscall reaches the fake file, and a write lands there', async () => {
      const {reference, intercepted} = await inOneSandbox(
        [pathSyscalls, ...TUNABLES.map((t) => join(tree, t))],
        [
          'intercept',
          ...alwaysRules(),
          '--mode',
          'always',
          '--',
          pathSyscalls,
          '-w',
          '1\n',
          ...TUNABLES.map((t) => `/proc/sys/${t}`),
        ],
      )
      for (const [i, t] of TUNABLES.entries()) {
        assertReached(intercepted[i], `fake ${t}\n`, reference[i].stat, 'inside gVisor')
        assert.equal(intercepted[i].write, 2)
        assert.equal(await readFile(join(tree, t), 'utf8'), '1\n', `the write to /proc/sys/${t} went to the fake tree`)
      }
    })

    it('truncate(2) of a tunable gVisor lacks truncates the fake file', async () => {
      const {intercepted} = await inOneSandbox(
        ['true'],
        ['intercept', ...alwaysRules(), '--mode', 'always', '--', pathSyscalls, '-t', '4', '/proc/sys/vm/panic_on_oom'],
      )
      assert.equal(intercepted[0].truncate, 0)
      assert.equal(await readFile(join(tree, 'vm/panic_on_oom'), 'utf8'), 'fake', 'the fake file, cut to 4 bytes')
    })

    it('mode missing: vm/panic_on_oom (missing in gVisor) comes from the fake tree, vm/overcommit_memory (present) from gVisor', async () => {
      const {reference, intercepted} = await inOneSandbox(
        [pathSyscalls, '/proc/sys/vm/overcommit_memory', join(tree, 'vm/panic_on_oom')],
        [
          'intercept',
          '--rule',
          `/proc/sys=${tree}`,
          '--',
          pathSyscalls,
          '/proc/sys/vm/overcommit_memory',
          '/proc/sys/vm/panic_on_oom',
        ],
      )
      const [realOvercommit, fakePanic] = reference
      assert.equal(typeof realOvercommit.open, 'string', 'gVisor has vm/overcommit_memory')
      assertReached(intercepted[0], realOvercommit.open, realOvercommit.stat, 'for the real vm/overcommit_memory')
      assertReached(intercepted[1], 'fake vm/panic_on_oom\n', fakePanic.stat, 'for the missing vm/panic_on_oom')
    })

    it('without --rule: a relative read in /proc/sys/vm, as busybox sysctl makes them, gets the fake value', async () => {
      const script = `cd /proc/sys/vm && { test -e panic_on_oom || echo "gVisor lacks panic_on_oom"; } && exec ${shellWords([process.execPath, HYBRID, 'intercept', '--', 'cat', 'panic_on_oom'])}`
      const result = await runInGvisor(['sh', '-c', script], {cwd: REPO})
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, 'gVisor lacks panic_on_oom\n0\n')
    })
  })
})

function shellWords(words: string[]): string {
  return words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ')
}
