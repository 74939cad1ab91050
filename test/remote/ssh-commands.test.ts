import {strict as assert} from 'node:assert'
import {existsSync} from 'node:fs'
import {readdir, readFile, stat} from 'node:fs/promises'

import {SshConnections} from '../../src/remote/connections.js'
import type {RemoteError} from '../../src/remote/errors.js'
import {createLab, type Lab, requireLab} from '../helpers/lab.js'
import {AWKWARD_VALUES} from '../unit/remote-quote.test.js'
import {labWorker} from './lab-workers.js'

const SUDO_PASSWORD = 'correct horse $(battery) staple'

/** Every process's argv on this machine, arguments joined by spaces. */
async function allCommandLines(): Promise<string[]> {
  const pids = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry))
  const lines = await Promise.all(
    pids.map((pid) =>
      readFile(`/proc/${pid}/cmdline`).then(
        (b) => b.toString().split('\0').join(' '),
        () => '',
      ),
    ),
  )
  return lines.filter(Boolean)
}

/** Commands and files on a worker over one connection: quoting, sudo in each mode, writes, reads, stat. */
describe('SSH commands and files (lab)', function () {
  this.timeout(120_000)
  let lab: Lab
  let connections: SshConnections

  before(async function () {
    requireLab(this)
    lab = await createLab({
      hosts: [
        {
          name: 'c1',
          users: [
            {name: 'ann', password: SUDO_PASSWORD, sudoers: 'ALL=(ALL) ALL'},
            {name: 'bob', sudoers: 'ALL=(ALL) NOPASSWD: ALL'},
            {name: 'eve'},
          ],
        },
      ],
    })
  })
  after(async () => {
    await lab?.destroy()
  })
  beforeEach(() => {
    connections = new SshConnections({HYBRID_SUDO_PASSWORD: SUDO_PASSWORD})
  })
  afterEach(async () => {
    await connections.closeAll()
  })

  const c1 = () => lab.host('c1')

  it('the worker receives every argument byte for byte: quotes, spaces, $(), newlines', async () => {
    const host = await connections.host(labWorker(lab, c1()))
    const result = await host.check(['printf', '%s\\0', ...AWKWARD_VALUES])
    assert.deepEqual(result.stdout.split('\0').slice(0, -1), AWKWARD_VALUES)
    assert.ok(!existsSync(c1().pathOnMachine('/tmp/hybrid-quote-pwned')), 'no $() ran')
    // A path made of them as well, through the file helpers.
    const path = `/tmp/label "zone"=it's $(x)\nnext`
    await host.writeFile(path, 'value\n', {mode: 0o640})
    assert.equal(await readFile(c1().pathOnMachine(path), 'utf8'), 'value\n')
    assert.equal((await host.stat(path))?.mode, 0o640)
  })

  it('runs every step over one connection', async () => {
    const before = ((await c1().sshdLog()).match(/Accepted publickey for root/g) ?? []).length
    const host = await connections.host(labWorker(lab, c1()))
    await Promise.all(Array.from({length: 12}, (_, i) => host.check(['echo', String(i)])))
    await host.facts({})
    await host.writeFile('/tmp/one-connection', 'x', {mode: 0o644})
    assert.equal(await connections.host(labWorker(lab, c1())), host, 'the same host object for the same worker')
    const after = ((await c1().sshdLog()).match(/Accepted publickey for root/g) ?? []).length
    assert.equal(after - before, 1)
  })

  it('stdin, exit codes and stderr come back', async () => {
    const host = await connections.host(labWorker(lab, c1()))
    const result = await host.run(['sh', '-c', 'cat; echo oops >&2; exit 7'], {stdin: 'in\n'})
    assert.deepEqual(result, {exitCode: 7, signal: undefined, stdout: 'in\n', stderr: 'oops\n'})
    await assert.rejects(host.check(['sh', '-c', 'echo why >&2; exit 3']), /^RemoteError: c1: sh failed: why$/)
  })

  it('writes a secret whole with its mode from creation, reads it back, and a missing file is undefined', async () => {
    const host = await connections.host(labWorker(lab, c1()))
    await host.writeFile('/etc/rancher/k3s/token', 'K10secret::server:abc\n', {mode: 0o600, owner: 'root:root'})
    const onMachine = c1().pathOnMachine('/etc/rancher/k3s/token')
    assert.equal((await stat(onMachine)).mode & 0o777, 0o600)
    assert.equal((await host.readFile('/etc/rancher/k3s/token'))?.toString(), 'K10secret::server:abc\n')
    assert.equal(await host.readFile('/etc/rancher/k3s/none'), undefined)
    assert.equal(await host.stat('/etc/rancher/k3s/none'), undefined)
    assert.equal((await host.stat('/etc/rancher/k3s'))?.type, 'directory')
    assert.equal((await stat(c1().pathOnMachine('/etc/rancher/k3s'))).mode & 0o777, 0o755, 'parents as usual')
  })

  it('sudo with a password: fed on stdin from HYBRID_SUDO_PASSWORD, never on a command line', async () => {
    const host = await connections.host(labWorker(lab, c1(), {user: 'ann', sudo: 'password'}))
    assert.deepEqual(await host.privilege(), {ability: 'password'})
    // The command's own stdin still arrives, after the password line sudo consumed.
    const result = await host.check(['sh', '-c', 'id -u; cat'], {sudo: true, stdin: 'own input\n'})
    assert.equal(result.stdout, '0\nown input\n')
    await host.writeFile('/etc/rancher/k3s/ann-token', 'tok\n', {mode: 0o600, sudo: true})
    assert.equal((await stat(c1().pathOnMachine('/etc/rancher/k3s/ann-token'))).uid, 0)
    // While sudo runs, no process on the machine (the lab hosts' included) has the password in its argv.
    const running = host.check(['sh', '-c', 'sleep 2; id -u'], {sudo: true})
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const argvs = await allCommandLines()
    assert.ok(
      argvs.some((argv) => argv.includes('sleep 2; id -u')),
      'the sudo command was seen running',
    )
    assert.ok(!argvs.some((argv) => argv.includes(SUDO_PASSWORD)), 'the password is in no argv')
    assert.equal((await running).stdout, '0\n')
  })

  it('sudo with a wrong password, without one, and for a user with no sudo: one sentence each', async () => {
    const wrong = new SshConnections({HYBRID_SUDO_PASSWORD: 'wrong password'})
    try {
      const host = await wrong.host(labWorker(lab, c1(), {user: 'ann', sudo: 'password'}))
      await assert.rejects(
        host.run(['true'], {sudo: true}),
        (error: RemoteError) =>
          error.code === 'SUDO_UNAVAILABLE' &&
          /sudo refused the password in HYBRID_SUDO_PASSWORD for user ann/.test(error.message),
      )
    } finally {
      await wrong.closeAll()
    }
    const none = new SshConnections({})
    try {
      const ann = await none.host(labWorker(lab, c1(), {user: 'ann', sudo: 'password'}))
      assert.match((await ann.privilege()).reason ?? '', /HYBRID_SUDO_PASSWORD is not set/)
      const eve = await none.host({...labWorker(lab, c1(), {user: 'eve', sudo: 'auto'}), name: 'c1-eve'})
      const resolution = await eve.privilege()
      assert.equal(resolution.ability, 'none')
      assert.match(resolution.reason ?? '', /user eve is not root and cannot sudo without a password/)
    } finally {
      await none.closeAll()
    }
  })

  it('sudo: nopasswd and auto use sudo -n; never refuses root work for a non-root user; root needs none', async () => {
    const bob = await connections.host(labWorker(lab, c1(), {user: 'bob', sudo: 'auto'}))
    assert.equal((await bob.privilege()).ability, 'nopasswd')
    assert.equal((await bob.check(['id', '-u'], {sudo: true})).stdout, '0\n')
    const never = await connections.host({...labWorker(lab, c1(), {user: 'bob', sudo: 'never'}), name: 'c1-never'})
    await assert.rejects(never.run(['id'], {sudo: true}), /c1-never: ssh\.sudo is never and user bob is not root/)
    const root = await connections.host({...labWorker(lab, c1()), name: 'c1-root'})
    assert.equal((await root.privilege()).ability, 'root')
  })
})
