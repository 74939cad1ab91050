import {strict as assert} from 'node:assert'
import {execFile, spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {promisify} from 'node:util'

import {REPO} from '../system/cluster-fixture.js'

const run = promisify(execFile)
const ADDON = join(REPO, 'native', 'build', 'Release', 'hybrid_interceptor.node')

/**
 * The addon a running hybrid loaded is never rebuilt or removed under it: `npx hybrid` from the checkout
 * (which installs the checkout into npx's cache and runs its `prepare` there, in place) finds it up to
 * date, and a real rebuild puts the new file in place by rename.
 */
describe('the native addon stays in place', function () {
  this.timeout(300_000)

  it('npx hybrid --version from the checkout, with an empty npm cache, leaves the addon file as it was', async () => {
    const before = await stat(ADDON)
    const cache = await mkdtemp(join(tmpdir(), 'hybrid-npx-cache-'))
    try {
      // Offline: the checkout is all npx needs, and no traffic leaves the machine.
      const {stdout} = await run('npx', ['hybrid', '--version'], {
        cwd: REPO,
        env: {...process.env, npm_config_cache: cache, npm_config_offline: 'true'},
      })
      assert.match(stdout, /^hybrid\/\d+\.\d+\.\d+ /)
    } finally {
      await rm(cache, {recursive: true, force: true})
    }
    const after = await stat(ADDON)
    assert.equal(after.ino, before.ino, 'the same file (not rebuilt)')
    assert.equal(after.mtimeMs, before.mtimeMs, 'not written')
  })

  it('a rebuild (npm run build:native -- --force) never leaves the addon missing, and replaces it by rename', async () => {
    const before = await stat(ADDON)
    const build = spawn('npm', ['run', 'build:native', '--', '--force'], {cwd: REPO, stdio: ['ignore', 'pipe', 'pipe']})
    let output = ''
    build.stdout.on('data', (d) => (output += d))
    build.stderr.on('data', (d) => (output += d))
    const done = new Promise<number | null>((resolve) => build.on('close', resolve))
    let finished = false
    void done.then(() => (finished = true))
    let missing = 0
    while (!finished) {
      if (!existsSync(ADDON)) missing++
      await sleep(20)
    }
    assert.equal(await done, 0, output)
    assert.equal(missing, 0, 'the addon was missing while it was rebuilt')
    const after = await stat(ADDON)
    assert.notEqual(after.ino, before.ino, 'a new file, renamed into place')
    assert.doesNotMatch(output, /gyp info/, "node-gyp's chatter is shown only when the build fails")
  })
})
