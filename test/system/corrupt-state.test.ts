import {strict as assert} from 'node:assert'
import {readdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {
  type ClusterFixture,
  cleanupFixture,
  cmdline,
  hybrid,
  makeFixture,
  recordPids,
  waitFor,
} from './cluster-fixture.js'

/** `down` when the state file is corrupt: best-effort from what it can still find (docs/architecture.md, "Corrupt state"). */
describe('down with a corrupt state file (control plane, stand-in k3s)', function () {
  this.timeout(180_000)
  let fixture: ClusterFixture | undefined

  afterEach(async () => {
    await cleanupFixture(fixture)
    fixture = undefined
  })

  it('stops the running supervisor and the stand-in server, says so, and moves the corrupt file aside', async () => {
    fixture = await makeFixture()
    const up = await hybrid(fixture, ['up', '--inventory', fixture.inventory, '--detach'])
    assert.equal(up.code, 0, up.stderr)
    const {supervisor, k3s} = await recordPids(fixture)
    assert.ok(supervisor && k3s)
    const clusterDir = join(fixture.stateDir, 'clusters', fixture.name)
    await writeFile(join(clusterDir, 'state.json'), '{"version": 2, "cluster": "lab", "workarounds": [')

    const down = await hybrid(fixture, ['down', '--inventory', fixture.inventory], {timeoutMs: 120_000})
    assert.equal(down.code, 0, `${down.stdout}\n${down.stderr}`)
    assert.match(down.stderr, new RegExp(`stopped the supervisor \\(pid ${supervisor}\\)`))
    assert.match(down.stderr, /moved the corrupt state file aside to \S+state\.json\.corrupt-/)
    await waitFor('the supervisor and the stand-in server to be gone', async () =>
      (await cmdline(supervisor)) === undefined && (await cmdline(k3s)) === undefined ? true : undefined,
    )
    const files = await readdir(clusterDir)
    assert.ok(!files.includes('state.json'), files.join(' '))
    assert.equal(files.filter((f) => f.startsWith('state.json.corrupt-')).length, 1, files.join(' '))

    const again = await hybrid(fixture, ['down', '--inventory', fixture.inventory])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /cluster lab is not up; nothing to do/)
  })
})
