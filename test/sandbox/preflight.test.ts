import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {renderPreflight} from '../../src/ui/preflight.js'
import {mountsUnder, readMountinfo} from '../../src/sandbox/probes/mountinfo.js'
import type {PreflightReport, PreflightRow} from '../../src/sandbox/preflight.js'
import {type ClusterState, writeState} from '../../src/state/cluster-state.js'
import {setCurrentCluster} from '../../src/state/current.js'
import {gvisorArgv, requireGvisor, runInGvisor} from '../helpers/gvisor.js'
import {hasKubeletValues, readMachineSysctls} from '../helpers/machine-sysctls.js'
import {hasTool, isRoot, requireRoot, requireTool, skipUnless} from '../helpers/requires.js'

/**
 * `hybrid preflight` for real: on this machine (a Linux VM, as root) and inside real gVisor (Debian's
 * runsc with a 9p root, as users' sandboxes are). Every run's table is printed for the report. After each
 * run the test checks, by the paths and names the probes recorded, that nothing was left behind.
 */
const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const RUN_JS = join(REPO, 'bin', 'run.js')

interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

/** `hybrid ARGS`, optionally behind a wrapper command (setpriv). */
function runCli(args: string[], env: NodeJS.ProcessEnv, wrapper: string[] = []): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const argv = [...wrapper, process.execPath, RUN_JS, ...args]
    const child = spawn(argv[0], argv.slice(1), {env, cwd: REPO, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code, stdout, stderr}))
  })
}

function rowOf(report: PreflightReport, id: string): PreflightRow {
  const row = report.rows.find((r) => r.id === id)
  assert.ok(row, `row ${id}`)
  return row
}

function printTable(title: string, report: PreflightReport): void {
  process.stdout.write(`\n      ---- ${title} ----\n${renderPreflight(report).replace(/^/gm, '      ')}\n\n`)
}

async function netnsNames(): Promise<string[]> {
  if (!hasTool('ip')) return []
  const out = await new Promise<string>((resolve) => {
    const child = spawn('ip', ['netns', 'list'], {stdio: ['ignore', 'pipe', 'ignore']})
    let text = ''
    child.stdout.on('data', (d) => (text += d))
    child.on('close', () => resolve(text))
  })
  // runsc creates runsc-<id> namespaces for its own sandboxes (ours and other tests'); they are not probes'.
  return out
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n !== '' && !n.startsWith('runsc-'))
    .sort()
}

/** Processes still running a probe's throwaway-namespace script (its marker is in their command line). */
async function probeProcesses(): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    const state = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '')
    if (cmdline.includes('hybrid-netns-ready') && !/\) [ZX] /.test(state)) pids.push(Number(entry))
  }
  return pids
}

/** The scratch paths and child cgroups the probes recorded in their findings. */
function recordedPaths(report: PreflightReport): string[] {
  const paths: string[] = []
  for (const row of report.rows) {
    const details = row.details ?? {}
    if (typeof details.scratch === 'string' && details.scratch !== '') paths.push(details.scratch)
    if (Array.isArray(details.created)) paths.push(...(details.created as string[]))
  }
  return paths
}

async function assertNothingLeft(report: PreflightReport, netnsBefore: string[]): Promise<void> {
  const paths = recordedPaths(report)
  for (const path of paths) assert.equal(existsSync(path), false, `${path} was removed`)
  const mounts = await readMountinfo()
  for (const path of [report.dataDir, ...paths])
    assert.deepEqual(mountsUnder(mounts, path), [], `nothing is mounted at or below ${path}`)
  assert.deepEqual(await netnsNames(), netnsBefore, 'no network namespace was added or removed')
  assert.deepEqual(await probeProcesses(), [], 'no probe process is left running')
}

describe('hybrid preflight on this machine (Linux, root)', function () {
  this.timeout(120_000)
  let dir: string
  let env: NodeJS.ProcessEnv

  before(async function () {
    requireRoot(this)
    dir = await mkdtemp(join(tmpdir(), 'hybrid-preflight-test-'))
    env = {...process.env, HYBRID_STATE_DIR: join(dir, 'state'), HYBRID_CACHE_DIR: join(dir, 'cache')}
  })
  after(async () => {
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('finds none of the gVisor blockers, exits 0, and leaves nothing behind', async () => {
    const netnsBefore = await netnsNames()
    const run = await runCli(['preflight', '--json'], env)
    const report = JSON.parse(run.stdout) as PreflightReport
    printTable('preflight on the host', report)
    assert.equal(run.code, 0, run.stderr)
    assert.equal(report.environment.facts.gvisor?.gvisor, false)
    // Each of these is a property of the machine, true here: a VM's ext4 root, root user, real /proc/sys.
    for (const id of ['snapshotter', 'cadvisor', 'procsys', 'kmsg', 'flannel', 'cgroups', 'iptables', 'cnibin']) {
      assert.equal(rowOf(report, id).found, false, `${id}: ${rowOf(report, id).evidence}`)
      assert.equal(rowOf(report, id).action, 'skip')
    }
    // These follow the inventory, not the machine: the defaults are an agent and tunnel mode.
    assert.equal(rowOf(report, 'egress').action, 'apply')
    assert.equal(rowOf(report, 'taint').action, 'apply')
    assert.equal(rowOf(report, 'kmsg').evidence, '/dev/kmsg opens for reading')
    assert.match(rowOf(report, 'snapshotter').evidence, /an overlay with two lower dirs mounts there; d_type supported/)
    assert.match(report.environment.ptrace, /^permitted: ran `true` under the interceptor/)
    assert.equal(existsSync(report.dataDir), false, 'the temporary data dir is removed')
    await assertNothingLeft(report, netnsBefore)
  })

  it('prints the table as aligned columns for people', async () => {
    const run = await runCli(['preflight'], env)
    process.stdout.write(run.stdout.replace(/^/gm, '      '))
    assert.equal(run.code, 0, run.stderr)
    const lines = run.stdout.split('\n')
    const header = lines.find((l) => l.startsWith('ID '))
    assert.ok(header, 'a header row')
    const column = header.indexOf('EVIDENCE')
    const kmsg = lines.find((l) => l.startsWith('kmsg '))!
    assert.equal(kmsg.indexOf('/dev/kmsg opens'), column, 'evidence starts in the EVIDENCE column')
    assert.match(run.stdout, /up would apply:\n {2}egress {2}--egress-selector-mode=cluster/)
  })

  it("with --inventory: probes the inventory's data dir without creating it, and follows its setting", async () => {
    const inventory = join(dir, 'lab.yaml')
    const dataDir = join(dir, 'not-yet', 'data')
    await writeFile(
      inventory,
      `apiVersion: hybrid.dev/v1alpha1\nkind: Cluster\nmetadata: {name: lab}\nspec:\n  token: {file: ${join(dir, 'token')}}\n  controlPlane:\n    dataDir: ${dataDir}\n    agent: false\n    workarounds: [kmsg, iptables]\n  network: {mode: direct}\n`,
    )
    const before = (await readdir(dir)).sort()
    const run = await runCli(['preflight', '--inventory', inventory, '--json'], env)
    assert.equal(run.code, 0, run.stderr)
    const report = JSON.parse(run.stdout) as PreflightReport
    assert.equal(report.dataDir, dataDir)
    assert.deepEqual(report.setting, ['kmsg', 'iptables'])
    assert.deepEqual(
      report.rows.filter((r) => r.action === 'apply').map((r) => r.id),
      ['kmsg', 'iptables'],
    )
    assert.equal(rowOf(report, 'egress').reason, 'not listed in workarounds')
    assert.equal(rowOf(report, 'egress').found, true, 'agentless: the apiserver has no node to reach pods from')
    assert.match(rowOf(report, 'snapshotter').evidence, new RegExp(`mounts there`))
    assert.deepEqual(
      (await readdir(dir)).sort(),
      before,
      'nothing was created beside the data dir (scratch dirs are gone)',
    )
    assert.equal(existsSync(join(dir, 'not-yet')), false)
  })

  it('without --inventory: probes the data dir and setting of the cluster `up` last brought up', async () => {
    const dataDir = join(dir, 'recorded-data')
    await mkdir(dataDir)
    const stateEnv = {...env, HYBRID_STATE_DIR: join(dir, 'state-with-cluster')}
    const state: ClusterState = {
      version: 2,
      cluster: 'lab',
      inventory: join(dir, 'gone.yaml'),
      settings: {name: 'lab', controlPlane: {dataDir, agent: false, workarounds: 'all'}, network: {mode: 'direct'}},
      dataDir,
      apiPort: 6443,
      createdAt: new Date().toISOString(),
      workarounds: [],
      kubeconfig: join(dir, 'kubeconfig'),
      phase: 'stopped',
    }
    const saved = process.env.HYBRID_STATE_DIR
    process.env.HYBRID_STATE_DIR = stateEnv.HYBRID_STATE_DIR
    try {
      await writeState(state)
      await setCurrentCluster('lab')
    } finally {
      process.env.HYBRID_STATE_DIR = saved
    }
    const run = await runCli(['preflight', '--json'], stateEnv)
    assert.equal(run.code, 0, run.stderr)
    const report = JSON.parse(run.stdout) as PreflightReport
    assert.deepEqual(
      [report.dataDir, report.setting, report.agent, report.networkMode],
      [dataDir, 'all', false, 'direct'],
    )
    assert.deepEqual(
      report.rows.filter((r) => r.action === 'apply').map((r) => r.id),
      ['egress', 'iptables', 'cnibin'],
      'all: every workaround an agentless server needs',
    )
    assert.deepEqual(await readdir(dataDir), [], 'the probes left nothing in the data dir')
  })

  /** `hybrid preflight --json` as uid 65534, with a home of its own (dir/NAME) under the test's dir. */
  async function preflightAsNobody(name: string): Promise<CliRun> {
    const home = join(dir, name)
    await mkdir(home)
    await chmod(dir, 0o711) // the user may pass through the test's dir to its own home
    await chmod(home, 0o777)
    return runCli(
      ['preflight', '--json'],
      {...env, HOME: home, HYBRID_STATE_DIR: join(home, 'state'), HYBRID_CACHE_DIR: join(home, 'cache')},
      ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups'],
    )
  }

  it('as a user without root: kmsg has no remedy (no bind mount without CAP_SYS_ADMIN), so exit 1 saying why', async function () {
    requireTool(this, 'setpriv', 'util-linux')
    const run = await preflightAsNobody('nobody')
    const report = JSON.parse(run.stdout) as PreflightReport
    printTable('preflight as uid 65534', report)
    assert.equal(report.environment.facts.root?.root, false)
    const kmsg = rowOf(report, 'kmsg')
    // kernel.dmesg_restrict=0 lets anyone read /dev/kmsg: then there is no blocker to find.
    skipUnless(
      this,
      kmsg.found,
      'this kernel lets uid 65534 read /dev/kmsg (dmesg_restrict=0), so there is no kmsg blocker',
    )
    assert.equal(kmsg.action, 'none-available')
    assert.match(kmsg.reason, /needs root \(CAP_SYS_ADMIN\); this is uid 65534/)
    assert.equal(run.code, 1)
    assert.match(run.stderr, /hybrid: the control plane cannot come up here: kmsg: .*needs root/)
    assert.equal(existsSync(report.dataDir), false)
  })

  it('as a user without root: procsys is found (the kubelet could not write its tunables) and the interceptor is the remedy', async function () {
    requireTool(this, 'setpriv', 'util-linux')
    // A machine that already has the kubelet's six values (a real Kubernetes node) gives the kubelet
    // nothing to write, so there is no refusal to find.
    skipUnless(
      this,
      !hasKubeletValues(await readMachineSysctls()),
      "this machine already has the kubelet's six /proc/sys values, so uid 65534 has nothing to be refused",
    )
    const report = JSON.parse((await preflightAsNobody('nobody-procsys')).stdout) as PreflightReport
    assert.equal(report.environment.facts.root?.root, false)
    const procsys = rowOf(report, 'procsys')
    assert.equal(procsys.found, true, `the kubelet could not write the tunables it wants: ${procsys.evidence}`)
    assert.match(procsys.evidence, /the kubelet writes \d+: refused \(EACCES\)/)
    assert.equal(procsys.action, 'apply', 'the interceptor still works without root')
  })

  it('a bad --inventory is one sentence and exit 2', async () => {
    const run = await runCli(['preflight', '--inventory', join(dir, 'missing.yaml')], env)
    assert.equal(run.code, 2)
    assert.equal(run.stdout, '')
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace')
    assert.match(run.stderr, /missing\.yaml/)
  })

  it('a probe that hangs is reported as "probe timed out" at its limit; its processes are killed, nothing is left', async () => {
    // A real hang: an `unshare` first on PATH that never returns, as a stuck tool would (a wedged lock, a
    // hung mount). The flannel and iptables probes run it; every other probe runs normally.
    const bin = join(dir, 'hanging-bin')
    const pids = join(dir, 'hanging.pids')
    await mkdir(bin, {recursive: true})
    await writeFile(join(bin, 'unshare'), `#!/bin/sh\necho $$ >> ${pids}\nexec sleep 300\n`, {mode: 0o755})
    const netnsBefore = await netnsNames()
    const started = Date.now()
    const run = await runCli(['preflight', '--json'], {
      ...env,
      PATH: `${bin}:${process.env.PATH}`,
      HYBRID_PROBE_TIMEOUT_SECONDS: '2',
    })
    const elapsed = Date.now() - started
    const report = JSON.parse(run.stdout) as PreflightReport
    printTable('preflight with a hanging unshare (2 s limit per probe)', report)
    for (const id of ['flannel', 'iptables']) {
      assert.equal(rowOf(report, id).timedOut, true, `${id} timed out`)
      assert.equal(rowOf(report, id).evidence, 'probe timed out after 2 s (assumed present)')
      assert.equal(
        rowOf(report, id).action,
        'apply',
        'a timed-out blocker is assumed present, so auto still applies its remedy',
      )
    }
    assert.deepEqual(
      report.rows.filter((r) => r.timedOut).map((r) => r.id),
      ['flannel', 'iptables'],
      'the other probes were not held up',
    )
    assert.ok(elapsed < 30_000, `returned in ${elapsed} ms`)
    const hung = (await readFile(pids, 'utf8')).trim().split('\n').map(Number)
    assert.ok(hung.length >= 2, 'both probes really ran the hanging tool')
    for (const pid of hung) {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
      assert.ok(stat === '' || /\) [ZX] /.test(stat), `the hanging tool ${pid} was killed`)
    }
    await assertNothingLeft(report, netnsBefore)
  })
})

describe('hybrid preflight inside gVisor (runsc, 9p root)', function () {
  this.timeout(300_000)
  let dir: string
  let env: NodeJS.ProcessEnv

  before(async function () {
    requireGvisor(this)
    skipUnless(
      this,
      existsSync(join(REPO, 'dist', 'src', 'commands', 'preflight.js')),
      'the CLI is not compiled (npx tsc -p .)',
    )
    dir = await mkdtemp(join(tmpdir(), 'hybrid-preflight-gvisor-'))
    env = {...process.env, HYBRID_STATE_DIR: join(dir, 'state'), HYBRID_CACHE_DIR: join(dir, 'cache')}
  })
  after(async () => {
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('--network=host: finds procsys, kmsg and the other blockers gVisor really has; iptables has no remedy there', async () => {
    const run = await runInGvisor(['node', RUN_JS, 'preflight', '--json'], {
      network: 'host',
      cwd: REPO,
      env,
      timeoutMs: 240_000,
    })
    const report = JSON.parse(run.stdout) as PreflightReport
    printTable('preflight inside gVisor (runsc --network=host --ignore-cgroups do -force-overlay=false)', report)
    const facts = report.environment.facts
    assert.equal(facts.gvisor?.gvisor, true)
    assert.equal(facts.gvisor?.platform, 'ptrace', 'Debian runsc runs on its default ptrace platform')
    assert.equal(facts.filesystem?.type, 'v9fs')
    assert.equal(facts.ptrace?.permitted, true, report.environment.ptrace)

    const procsys = rowOf(report, 'procsys')
    assert.equal(procsys.found, true)
    assert.match(
      procsys.evidence,
      /missing: vm\/panic_on_oom, kernel\/panic, kernel\/panic_on_oops, kernel\/keys\/root_maxkeys, kernel\/keys\/root_maxbytes/,
    )
    assert.match(procsys.evidence, /vm\/overcommit_memory is 0, the kubelet writes 1: refused \(EIO\)/)
    assert.equal(rowOf(report, 'kmsg').found, true)
    assert.match(rowOf(report, 'kmsg').evidence, /ENOENT/)
    assert.equal(rowOf(report, 'cadvisor').found, true, 'a 9p root has no block device')
    assert.equal(rowOf(report, 'cgroups').found, true)
    assert.equal(rowOf(report, 'cgroups').evidence, 'no cgroup hierarchy is mounted at /sys/fs/cgroup')
    assert.equal(rowOf(report, 'flannel').found, true)
    assert.match(rowOf(report, 'flannel').evidence, /creating a bridge fails/)
    for (const id of ['procsys', 'kmsg', 'cadvisor', 'cgroups', 'flannel', 'egress', 'taint'])
      assert.equal(rowOf(report, id).action, 'apply', id)
    // This runsc mounts overlays on its 9p root and follows symlinks there: those two blockers are not
    // present in it (they are in the sandboxes the research saw; their probes decide per machine).
    assert.equal(rowOf(report, 'snapshotter').found, false, rowOf(report, 'snapshotter').evidence)
    assert.equal(rowOf(report, 'cnibin').found, false, rowOf(report, 'cnibin').evidence)
    // With the host's network stack gVisor has no iptables at all: nf_tables and the legacy backend both fail.
    const iptables = rowOf(report, 'iptables')
    assert.equal(iptables.found, true)
    assert.match(iptables.evidence, /Failed to initialize nft: Protocol not supported/)
    assert.equal(iptables.action, 'none-available')
    assert.equal(report.ok, false)
    assert.equal(run.code, 1, 'exit 1: a found blocker has no remedy here')
    assert.match(
      run.stderr,
      /hybrid: the control plane cannot come up here: iptables: .*legacy iptables backend fails too/,
    )
    await assertNothingLeft(report, await netnsNames())
  })

  it('its own network stack with --net-raw: legacy iptables works, so every blocker has a remedy (exit 0)', async () => {
    const [file, ...args] = gvisorArgv(['node', RUN_JS, 'preflight', '--json'], 'none', REPO)
    const argv = [file, '--net-raw', ...args]
    const run = await new Promise<CliRun>((resolve, reject) => {
      const child = spawn(argv[0], argv.slice(1), {env, stdio: ['ignore', 'pipe', 'pipe']})
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => (stdout += d))
      child.stderr.on('data', (d) => (stderr += d))
      const timer = setTimeout(() => child.kill('SIGTERM'), 240_000)
      child.on('error', reject)
      child.on('close', (code) => (clearTimeout(timer), resolve({code, stdout, stderr})))
    })
    const report = JSON.parse(run.stdout) as PreflightReport
    printTable('preflight inside gVisor (runsc --network=none --net-raw …)', report)
    const iptables = rowOf(report, 'iptables')
    assert.equal(iptables.found, true)
    assert.match(iptables.evidence, /nft: .*Protocol not supported; legacy: works/)
    assert.equal(iptables.action, 'apply')
    assert.equal(rowOf(report, 'procsys').found, true)
    assert.equal(rowOf(report, 'kmsg').found, true)
    assert.equal(report.ok, true, report.problems.join('; '))
    assert.equal(run.code, 0, run.stderr)
  })

  it('the tell for gVisor holds only inside it', async () => {
    assert.equal(existsSync('/proc/sentry-meminfo'), false, 'this Linux has no Sentry')
    const run = await runInGvisor(['sh', '-c', 'test -e /proc/sentry-meminfo && cat /proc/version'], {
      network: 'none',
      cwd: REPO,
      env,
    })
    assert.equal(run.code, 0)
    assert.match(run.stdout, /^Linux version 4\.4\.0 #1 SMP Sun Jan 10 15:06:54 PST 2016/)
    assert.ok(isRoot())
  })
})
