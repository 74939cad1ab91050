import {strict as assert} from 'node:assert'
import {execFileSync} from 'node:child_process'
import {lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import type {WorkerChecks} from '../../src/remote/worker-check.js'
import {createLab, type Lab, requireLab} from '../helpers/lab.js'
import {runCommand} from '../helpers/lab.js'
import {runHybrid} from '../native/helpers/run-hybrid.js'
import {writeLabInventory} from './lab-workers.js'

const WRITER = fileURLToPath(new URL('./known-hosts-writer.js', import.meta.url))
const HOSTS = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8']

/**
 * Four `hybrid preflight` processes at once make first contact with eight lab hosts through one
 * known_hosts file under accept-new: every process records what it finds, none loses another's lines,
 * and OpenSSH's own ssh-keygen finds every host afterwards.
 */
describe('known_hosts written by several hybrids at once (lab)', function () {
  this.timeout(240_000)
  let lab: Lab
  let dir: string

  before(async function () {
    requireLab(this)
    dir = await mkdtemp(join(tmpdir(), 'hybrid-known-hosts-race-'))
    lab = await createLab({hosts: HOSTS.map((name) => ({name})), knownHosts: 'empty'})
  })
  after(async () => {
    await lab?.destroy()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  /** Four real `hybrid preflight` runs started together, each with a state dir of its own. */
  async function fourAtOnce(knownHosts: string, scene: string): Promise<void> {
    const sceneDir = join(dir, scene)
    await mkdir(sceneDir, {recursive: true})
    const inventory = await writeLabInventory(
      sceneDir,
      lab,
      HOSTS.map((name) => ({host: lab.host(name)})),
      {knownHosts, ssh: {hostKeyPolicy: 'accept-new', connectTimeoutSeconds: 30}, network: {manageSshd: false}},
    )
    const runs = await Promise.all(
      [1, 2, 3, 4].map((n) =>
        runHybrid(['preflight', '--inventory', inventory, '--json'], {
          env: {...process.env, HYBRID_STATE_DIR: join(sceneDir, `state-${n}`)},
          timeoutMs: 120_000,
        }),
      ),
    )
    for (const run of runs) {
      const workers = (JSON.parse(run.stdout) as {workers: WorkerChecks}).workers.workers
      for (const w of workers)
        assert.ok(
          ['recorded', 'known'].includes(String(w.hostKey)),
          `${w.name}: ${w.hostKey} ${w.problems.join(' | ')}`,
        )
    }
  }

  /** Every host's address is found by OpenSSH in the file, once per key. */
  async function assertAllPresent(knownHosts: string): Promise<void> {
    const missing = HOSTS.filter((name) => {
      try {
        execFileSync('ssh-keygen', ['-F', lab.host(name).address, '-f', knownHosts], {stdio: 'ignore'})
        return false
      } catch {
        return true
      }
    })
    assert.deepEqual(
      missing,
      [],
      `ssh-keygen -F finds no key for ${missing.join(', ')} in:\n${await readFile(knownHosts, 'utf8')}`,
    )
    const lines = (await readFile(knownHosts, 'utf8')).split('\n').filter(Boolean)
    assert.equal(lines.length, HOSTS.length, `one line per host, not duplicates:\n${lines.join('\n')}`)
  }

  it('four preflights, eight new hosts, one known_hosts: all eight recorded, each once, as OpenSSH reads them', async () => {
    const knownHosts = join(dir, 'known_hosts')
    await writeFile(knownHosts, '', {mode: 0o600})
    await fourAtOnce(knownHosts, 'plain')
    await assertAllPresent(knownHosts)
  })

  it('eight processes at the same instant, each recording two new keys (every key by two of them): each key once, none lost', async () => {
    const knownHosts = join(dir, 'known_hosts_at_once')
    await writeFile(knownHosts, '', {mode: 0o600})
    const startAt = String(Date.now() + 3000)
    const keys = HOSTS.map((name) => {
      const host = lab.host(name)
      return `${name}=${host.address}=${host.hostKey.replace(' ', ':')}`
    })
    const runs = await Promise.all(
      keys.map((_, i) =>
        runCommand(process.execPath, [WRITER, knownHosts, startAt, keys[i], keys[(i + 1) % keys.length]]),
      ),
    )
    for (const run of runs) {
      assert.equal(run.code, 0, run.stderr)
      for (const [name, status] of Object.entries(JSON.parse(run.stdout) as Record<string, string>))
        assert.ok(['recorded', 'known'].includes(status), `${name}: ${status}`)
    }
    await assertAllPresent(knownHosts)
  })

  it('a symlinked known_hosts is appended through and stays a symlink', async () => {
    const real = join(dir, 'real_known_hosts')
    await writeFile(real, '# kept by the user\n', {mode: 0o600})
    const link = join(dir, 'linked_known_hosts')
    await symlink(real, link)
    await fourAtOnce(link, 'symlink')
    assert.ok((await lstat(link)).isSymbolicLink(), 'known_hosts is still a symlink')
    assert.equal(await readlink(link), real)
    assert.match(await readFile(real, 'utf8'), /^# kept by the user\n/)
    const text = await readFile(real, 'utf8')
    await writeFile(join(dir, 'without-comment'), text.replace(/^#.*\n/, ''))
    await assertAllPresent(join(dir, 'without-comment'))
  })
})
