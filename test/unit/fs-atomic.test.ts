import {strict as assert} from 'node:assert'
import {mkdtemp, readdir, readFile, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {writeFileAtomic} from '../../src/util/fs-atomic.js'

describe('writeFileAtomic', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-atomic-'))
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('creates a secret with mode 0600 and leaves no temp file', async () => {
    const file = join(dir, 'sub', 'token')
    await writeFileAtomic(file, 'K10abc', 0o600)
    assert.equal(await readFile(file, 'utf8'), 'K10abc')
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    assert.deepEqual(await readdir(join(dir, 'sub')), ['token'])
  })

  it('replaces an existing file whole', async () => {
    const file = join(dir, 'config.yaml')
    await writeFileAtomic(file, 'old: 1\n')
    await writeFileAtomic(file, 'new: 2\n')
    assert.equal(await readFile(file, 'utf8'), 'new: 2\n')
  })

  it('exclusive: of writers racing to create one file exactly one wins, the others get EEXIST', async () => {
    const file = join(dir, 'state.json')
    const results = await Promise.allSettled(
      [1, 2, 3, 4].map((n) => writeFileAtomic(file, `writer ${n}\n`, 0o600, {exclusive: true})),
    )
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i + 1] : []))
    assert.equal(won.length, 1, 'one winner')
    assert.equal(await readFile(file, 'utf8'), `writer ${won[0]}\n`)
    for (const r of results)
      if (r.status === 'rejected') assert.equal((r.reason as NodeJS.ErrnoException).code, 'EEXIST')
    assert.deepEqual(await readdir(dir), ['state.json'], 'no temp file left by the losers')
  })
})
