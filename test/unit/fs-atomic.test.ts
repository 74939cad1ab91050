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
})
