import {strict as assert} from 'node:assert'
import {mkdtemp, rm, symlink} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {selfCommand} from '../../src/cli/self-command.js'
import {RUN_JS} from '../system/cluster-fixture.js'

describe('selfCommand: the hybrid that hints name', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-self-'))
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('is `hybrid` when that name on PATH is this program (a link, as setup makes it)', async () => {
    await symlink(RUN_JS, join(dir, 'hybrid'))
    assert.equal(selfCommand({PATH: `/usr/bin:${dir}`}, RUN_JS), 'hybrid')
  })

  it('is the program path when PATH has no hybrid, or another one', async () => {
    assert.equal(selfCommand({PATH: '/usr/bin:/bin'}, RUN_JS), RUN_JS)
    await symlink('/bin/true', join(dir, 'hybrid'))
    assert.equal(selfCommand({PATH: dir}, RUN_JS), RUN_JS)
  })

  it('is `npx hybrid` under npx, whose PATH entry is gone once it ends', () => {
    assert.equal(selfCommand({PATH: '/usr/bin', npm_command: 'exec'}, RUN_JS), 'npx hybrid')
  })
})
