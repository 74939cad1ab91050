import {strict as assert} from 'node:assert'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createLab, type Lab, requireLab} from '../helpers/lab.js'
import {writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort, run, RUN_JS, STANDIN} from '../system/cluster-fixture.js'

/**
 * A worker whose command output carries terminal escape sequences (a window title, a screen clear): `up`
 * shows them escaped (`\x1b`) in its output and its log, never as sequences. The worker's curl is a
 * script printing them on stderr and failing as curl does when nothing answers; the control plane is the
 * k3s stand-in (named so: no real k3s here).
 */
describe('escape sequences a worker sends reach neither the terminal nor the log (lab)', function () {
  this.timeout(300_000)
  let lab: Lab | undefined
  let dir: string | undefined
  let env: NodeJS.ProcessEnv = {}
  let inventory = ''

  before(async function () {
    requireLab(this)
    dir = await mkdtemp(join(tmpdir(), 'hybrid-escapes-'))
    lab = await createLab({hosts: [{name: 'w1'}]})
    const w1 = lab.host('w1')
    const fake = `#!/bin/sh\nprintf 'curl: (7) \\033]0;pwned\\007 \\033[2J refused\\n' >&2\nexit 7\n`
    await w1.exec(['sh', '-c', 'cat >/usr/local/bin/curl && chmod 755 /usr/local/bin/curl'], {input: fake})
    inventory = await writeLabInventory(dir, lab, [{host: w1}], {
      name: 'escapes',
      k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
      controlPlane: {agent: false, apiPort: await freePort()},
    })
    env = fixtureEnv(dir)
  })

  after(async () => {
    if (dir) await run(process.execPath, [RUN_JS, 'down', '--inventory', inventory], {env, timeoutMs: 120_000})
    await lab?.destroy()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('shows \\x1b]0;pwned\\x07 and \\x1b[2J escaped in up’s output and log', async () => {
    const up = await run(process.execPath, [RUN_JS, 'up', '--inventory', inventory, '--detach'], {
      env,
      timeoutMs: 240_000,
    })
    assert.notEqual(up.code, 0, 'w1 cannot join')
    const output = up.stdout + up.stderr
    assert.match(output, /\\x1b\]0;pwned\\x07 \\x1b\[2J refused/, output)
    assert.ok(!output.includes('\x1b]0;pwned') && !output.includes('\x1b[2J'), 'no raw sequence in the output')
    const log = await readFile(join(env.HYBRID_STATE_DIR!, 'logs', 'hybrid.log'), 'utf8')
    assert.ok(log.includes('\\\\x1b]0;pwned\\\\x07'), 'the log has the sequence escaped')
    assert.ok(!log.includes('\\u001b]0;pwned') && !log.includes('\x1b'), 'and not as a control character')
  })
})
