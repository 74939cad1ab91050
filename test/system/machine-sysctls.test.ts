import {strict as assert} from 'node:assert'
import {spawn} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {freePort} from '../helpers/free-port.js'
import {hasKubeletValues, type MachineSysctls, readMachineSysctls} from '../helpers/machine-sysctls.js'
import {isRoot, skipUnless} from '../helpers/requires.js'
import {sysctlsBeforeRun} from '../helpers/root-hooks.js'
import {STANDIN, startStandinServer} from '../helpers/standin-server.js'

/**
 * The k3s stand-in's embedded agent (a test fixture, not k3s), run on this machine's host rather than in
 * gVisor, writes the kubelet's six /proc/sys tunables machine-wide, as a real kubelet does. Tests leave
 * the machine as they found it: the stand-in helper puts them back when it stops the server, and the root
 * hooks every test file shares (.mocharc.json) put them back after each test, even one that forgot.
 */
describe("the kubelet's tunables on this machine, around tests that run the stand-in's agent on the host", function () {
  this.timeout(60_000)
  let found: MachineSysctls

  before(async function () {
    skipUnless(this, isRoot(), "only root can change the machine's /proc/sys (CI runs as root)")
    found = await readMachineSysctls()
    skipUnless(
      this,
      !hasKubeletValues(found),
      "this machine already has the kubelet's six values, so the stand-in's agent changes nothing to put back",
    )
    assert.ok(sysctlsBeforeRun(), 'the root hooks (.mocharc.json) recorded the tunables before the run')
  })

  it("the stand-in helper's server, with its agent, sets the kubelet's values machine-wide; stop() puts them back", async () => {
    const server = await startStandinServer()
    try {
      assert.ok(hasKubeletValues(await readMachineSysctls()), `the agent wrote them:\n${server.output()}`)
    } finally {
      await server.stop()
    }
    assert.deepEqual(await readMachineSysctls(), found)
  })

  it('a stand-in started without the helper changes them and leaves them so (the next test sees the root hook’s repair)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-sysctls-'))
    const args = ['server', '--data-dir', join(dir, 'data'), '--https-listen-port', String(await freePort())]
    args.push('--bind-address', '127.0.0.1', '--advertise-address', '127.0.0.1')
    const child = spawn(STANDIN, args, {stdio: ['ignore', 'pipe', 'pipe']})
    const exited = new Promise((resolve) => child.on('close', resolve))
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    try {
      const deadline = Date.now() + 30_000
      while (!hasKubeletValues(await readMachineSysctls())) {
        assert.ok(child.exitCode === null && Date.now() < deadline, `the agent did not write them:\n${out}`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    } finally {
      child.kill('SIGKILL')
      await exited
      await rm(dir, {recursive: true, force: true})
    }
  })

  it('after that test the root hook has put back the values recorded before the run', async () => {
    assert.deepEqual(await readMachineSysctls(), sysctlsBeforeRun())
  })
})
