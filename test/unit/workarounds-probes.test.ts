import assert from 'node:assert/strict'
import {chmod, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {findProgram} from '../../src/sandbox/probes/find-program.js'
import {mountContaining, mountsAt, mountsUnder, parseMountinfo} from '../../src/sandbox/probes/mountinfo.js'
import {runTool, shellQuote, toolFailure} from '../../src/sandbox/probes/run-tool.js'
import {formatSeconds, withTimeLimit} from '../../src/sandbox/probes/time-limit.js'

const MOUNTINFO = [
  '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
  '30 22 0:26 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=100k',
  '31 22 0:40 / /data\\040dir rw - tmpfs tmpfs rw',
  '45 30 0:26 /null /dev/kmsg rw - devtmpfs udev rw',
  '46 30 0:26 /zero /dev/kmsg rw - devtmpfs udev rw',
  '50 31 0:41 / /data\\040dir/x/merged rw - overlay overlay rw,lowerdir=a',
  'garbage line',
].join('\n')

describe('probe plumbing: mountinfo', () => {
  const entries = parseMountinfo(MOUNTINFO)

  it('parses fields, unescapes paths and skips malformed lines', () => {
    assert.equal(entries.length, 6)
    assert.deepEqual(entries[2], {
      id: 31,
      parent: 22,
      device: '0:40',
      root: '/',
      mountPoint: '/data dir',
      fsType: 'tmpfs',
      source: 'tmpfs',
    })
    assert.equal(entries[3].root, '/null')
  })

  it("decodes the kernel's octal escapes in paths: space, tab, newline, backslash", () => {
    const [entry] = parseMountinfo(
      '60 22 0:50 /src\\134dir /mnt/a\\040-\\040b\\011c\\012d\\134040e rw shared:7 - fuse.x my\\040source rw\n',
    )
    assert.equal(entry.root, '/src\\dir')
    // " - " inside a path is not the separator; an escaped backslash before digits stays a backslash.
    assert.equal(entry.mountPoint, '/mnt/a - b\tc\nd\\040e')
    assert.equal(entry.fsType, 'fuse.x')
    assert.equal(entry.source, 'my source')
    assert.deepEqual(
      mountsUnder([entry], '/mnt/a - b\tc\nd\\040e').map((e) => e.id),
      [60],
    )
  })

  it('finds the mount a path lives on: the longest mount point, the topmost of stacked ones', () => {
    assert.equal(mountContaining(entries, '/data dir/k3s/agent')?.fsType, 'tmpfs')
    assert.equal(mountContaining(entries, '/var/lib/hybrid')?.device, '254:0')
    assert.equal(mountContaining(entries, '/dev/kmsg')?.id, 46)
    assert.deepEqual(
      mountsAt(entries, '/dev/kmsg').map((e) => e.id),
      [45, 46],
    )
  })

  it('lists mounts below a directory deepest first, and never treats / as a scratch dir', () => {
    assert.deepEqual(
      mountsUnder(entries, '/data dir').map((e) => e.id),
      [50, 31],
    )
    assert.deepEqual(mountsUnder(entries, '/'), [])
  })
})

/** 'running' or 'gone' (exited; an orphan's zombie waits for PID 1 to reap it). */
async function stateOf(pid: number): Promise<'running' | 'gone'> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  return status === '' || /^State:\s+[ZX]/m.test(status) ? 'gone' : 'running'
}

describe('probe plumbing: tools and time limits', () => {
  let dir: string
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'hybrid-probe-test-'))))
  after(async () => rm(dir, {recursive: true, force: true}))

  it("reports a tool's first error line, a missing tool as not installed", async () => {
    const failed = await runTool('sh', [
      '-c',
      'echo "iptables: Failed to initialize nft: Protocol not supported" >&2; echo "Perhaps upgrade." >&2; exit 1',
    ])
    assert.equal(failed.ok, false)
    assert.equal(toolFailure(failed, 'iptables'), 'iptables: Failed to initialize nft: Protocol not supported')
    const missing = await runTool('hybrid-no-such-tool', [])
    assert.equal(missing.spawnError, 'ENOENT')
    assert.equal(toolFailure(missing, 'hybrid-no-such-tool'), 'hybrid-no-such-tool is not installed')
    assert.equal(toolFailure(await runTool('sh', ['-c', 'exit 3']), 'sh'), 'sh exited with status 3')
  })

  it('kills the whole process group of a tool at the time limit (nothing left running)', async () => {
    const pids = join(dir, 'pids')
    const started = Date.now()
    const result = await runTool('sh', ['-c', `echo $$ > ${pids}; sleep 300 & echo $! >> ${pids}; wait`], {
      signal: AbortSignal.timeout(300),
    })
    // A 300 ms limit on a 300 s sleep: seconds on a loaded machine, not minutes.
    assert.ok(Date.now() - started < 9000, 'returned at the limit')
    assert.equal(result.aborted, true)
    assert.equal(toolFailure(result, 'sh'), 'sh was stopped at the time limit')
    const recorded = (await readFile(pids, 'utf8')).trim().split('\n').map(Number)
    assert.equal(recorded.length, 2)
    await new Promise((r) => setTimeout(r, 100))
    for (const pid of recorded)
      assert.equal(await stateOf(pid), 'gone', `process ${pid} is gone (a zombie awaiting its reaper counts as gone)`)
  })

  it('withTimeLimit gives the value, or timedOut at the limit with the probe told to stop', async () => {
    const quick = await withTimeLimit(1000, async () => 42)
    assert.deepEqual(
      {timedOut: quick.timedOut, value: quick.timedOut ? undefined : quick.value},
      {timedOut: false, value: 42},
    )
    let cleanedUp = false
    const slow = await withTimeLimit(
      100,
      (signal) =>
        new Promise<number>((resolve) =>
          signal.addEventListener('abort', () => setTimeout(() => ((cleanedUp = true), resolve(0)), 50)),
        ),
    )
    assert.equal(slow.timedOut, true)
    assert.equal(cleanedUp, false, 'returned at the limit, before the clean-up')
    await slow.done
    assert.equal(cleanedUp, true, 'done settles once the probe has cleaned up')
    await assert.rejects(
      withTimeLimit(1000, async () => {
        throw new Error('boom')
      }),
      /boom/,
    )
  })

  it('quotes any path as one sh word', async () => {
    const odd = "it's a $(path) with `ticks`"
    assert.equal((await runTool('sh', ['-c', `printf %s ${shellQuote(odd)}`])).stdout, odd)
  })

  it('formats limits for the table', () => {
    assert.equal(formatSeconds(50), '50 ms')
    assert.equal(formatSeconds(20_000), '20 s')
    assert.equal(formatSeconds(1500), '1.5 s')
  })
})

describe('probe plumbing: finding a program', () => {
  let dir: string
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'hybrid-find-program-'))))
  afterEach(async () => rm(dir, {recursive: true, force: true}))

  it('takes the first executable file on PATH: not a directory, not a file without x', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((d) => join(dir, d))
    await mkdir(join(a, 'tool'), {recursive: true})
    await mkdir(b)
    await writeFile(join(b, 'tool'), '#!/bin/sh\n', {mode: 0o644})
    await mkdir(c)
    await writeFile(join(c, 'tool'), '#!/bin/sh\n')
    await chmod(join(c, 'tool'), 0o755)
    assert.equal(findProgram('tool', [a, b, c].join(':')), join(c, 'tool'))
  })

  it("falls back to the system's sbin and bin dirs, and says undefined when there is none", () => {
    assert.match(findProgram('sh', join(dir, 'empty')) ?? '', /^\/(usr\/)?s?bin\/sh$/)
    assert.equal(findProgram('hybrid-no-such-program', ''), undefined)
  })
})
