import {strict as assert} from 'node:assert'
import {randomBytes} from 'node:crypto'
import {readdir, readFile, writeFile} from 'node:fs/promises'

import {type ClusterFixture, cleanupFixture, hybrid, makeFixture, recordPids} from './cluster-fixture.js'

/**
 * Secrets given to hybrid in its environment stay in hybrid (docs/architecture.md, "Trust and failure
 * model"): after `up --detach` with the cluster token in an environment variable (spec.token.env) and
 * HYBRID_SUDO_PASSWORD set, no process on this machine — the detached supervisor, the k3s stand-in (named
 * so: no real k3s here), whatever they started — has either value in its environment.
 */

/** The pids (with their command lines) whose /proc/PID/environ holds `value`; every process on the machine. */
async function environsHolding(value: string): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const environ = await readFile(`/proc/${entry}/environ`).catch(() => undefined)
    if (!environ?.includes(value)) continue
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    found.push(`${entry}: ${cmdline.split('\0').join(' ').trim()}`)
  }
  return found
}

describe('secrets out of the environments of hybrid’s children (control plane, stand-in k3s)', function () {
  this.timeout(180_000)
  let fixture: ClusterFixture | undefined

  after(async () => cleanupFixture(fixture))

  it('after up --detach, no /proc/*/environ holds the token from spec.token.env or HYBRID_SUDO_PASSWORD', async () => {
    fixture = await makeFixture()
    const text = await readFile(fixture.inventory, 'utf8')
    await writeFile(fixture.inventory, text.replace(/^ {2}token: \{file: .*\}$/m, '  token: {env: HYBRID_LAB_TOKEN}'))
    const token = `token-${randomBytes(12).toString('hex')}`
    const password = `sudo-${randomBytes(12).toString('hex')}`
    const up = await hybrid(fixture, ['up', '--inventory', fixture.inventory, '--detach'], {
      env: {HYBRID_LAB_TOKEN: token, HYBRID_SUDO_PASSWORD: password},
    })
    assert.equal(up.code, 0, up.stderr)
    const pids = await recordPids(fixture)
    assert.ok(pids.supervisor && pids.k3s, 'the detached supervisor and k3s run')
    // The token did reach k3s, through its file: the server token k3s wrote carries it.
    assert.match(await readFile(`${fixture.dataDir}/server/token`, 'utf8'), new RegExp(`::server:${token}\\n$`))
    assert.deepEqual(await environsHolding(token), [], 'no environment holds the token')
    assert.deepEqual(await environsHolding(password), [], 'no environment holds the sudo password')
  })
})
