import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

import {extractFromLayer, type TarFinding} from '../../src/k3s/layer-extract.js'

/**
 * Taking bin/k3s out of an image layer, on archives made by GNU tar in each of its formats, plain and
 * gzipped: what the reader finds, and what it writes (only ever at the target it was given).
 */
describe('k3s binary: reading bin/k3s out of a tar layer', function () {
  let dir: string
  const binary = randomBytes(100_000 + 123) // not a multiple of 512

  beforeEach(async function () {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-k3s-tar-'))
  })

  afterEach(async function () {
    await rm(dir, {recursive: true, force: true})
  })

  /** Make a tree under dir/root with `files`, tar it with `args`, return the archive's path. */
  async function archive(files: Record<string, Buffer | {link: string}>, args: string[] = []): Promise<string> {
    const root = join(dir, 'root')
    await rm(root, {recursive: true, force: true})
    for (const [name, content] of Object.entries(files)) {
      await mkdir(dirname(join(root, name)), {recursive: true})
      if (Buffer.isBuffer(content)) await writeFile(join(root, name), content)
      else await symlink(content.link, join(root, name))
    }
    const out = join(dir, 'layer.tar')
    await rm(out, {force: true})
    execFileSync('tar', ['-C', root, ...args, '-cf', out, '.'])
    return out
  }

  const target = () => join(dir, 'k3s.partial')

  async function extract(layer: string, wanted = 'bin/k3s'): Promise<{finding: TarFinding; content?: Buffer}> {
    const finding = await extractFromLayer(layer, wanted, target())
    return existsSync(target()) ? {finding, content: await readFile(target())} : {finding}
  }

  for (const format of ['gnu', 'ustar', 'pax']) {
    it(`finds ./bin/k3s among other files (${format} format), written 0600`, async function () {
      const layer = await archive(
        {'bin/k3s': binary, 'bin/other': randomBytes(777), 'etc/os-release': Buffer.from('x\n')},
        [`--format=${format}`],
      )
      const {finding, content} = await extract(layer)
      assert.deepEqual(finding, {kind: 'file', bytes: binary.length})
      assert.ok(content?.equals(binary))
      assert.equal((await stat(target())).mode & 0o777, 0o600)
    })
  }

  it('a gzipped layer', async function () {
    const layer = await archive({'bin/k3s': binary, 'bin/other': randomBytes(777)}, ['-z'])
    const {finding, content} = await extract(layer)
    assert.deepEqual(finding, {kind: 'file', bytes: binary.length})
    assert.ok(content?.equals(binary))
  })

  it('long paths: GNU L records, ustar prefixes and pax path records', async function () {
    const long = `${'deep/'.repeat(25)}k3s` // 128 characters
    for (const format of ['gnu', 'ustar', 'pax']) {
      const layer = await archive({[long]: binary}, [`--format=${format}`])
      const {finding, content} = await extract(layer, long)
      assert.equal(finding.kind, 'file', format)
      assert.ok(content?.equals(binary), format)
    }
  })

  it('absent, a whiteout, an opaque directory, a symlink: nothing is written', async function () {
    assert.deepEqual(await extract(await archive({'etc/x': Buffer.from('x')})), {finding: {kind: 'absent'}})
    assert.deepEqual(await extract(await archive({'bin/.wh.k3s': Buffer.alloc(0)})), {finding: {kind: 'whiteout'}})
    assert.deepEqual(await extract(await archive({'bin/.wh..wh..opq': Buffer.alloc(0), 'bin/ctr': Buffer.from('c')})), {
      finding: {kind: 'whiteout'},
    })
    assert.deepEqual(await extract(await archive({'bin/k3s': {link: 'k3s-real'}, 'bin/k3s-real': binary})), {
      finding: {kind: 'link', target: 'k3s-real'},
    })
  })

  it('a whiteout of a sibling or of another directory hides nothing', async function () {
    const layer = await archive({'bin/.wh.k3s-old': Buffer.alloc(0), 'etc/.wh..wh..opq': Buffer.alloc(0)})
    assert.deepEqual(await extract(layer), {finding: {kind: 'absent'}})
  })

  it('a file stored twice (tar --append): the last copy wins', async function () {
    const layer = await archive({'bin/k3s': Buffer.from('old, and longer than nothing')})
    await writeFile(join(dir, 'root', 'bin', 'k3s'), binary)
    execFileSync('tar', ['-C', join(dir, 'root'), '-rf', layer, './bin/k3s'])
    const {finding, content} = await extract(layer)
    assert.deepEqual(finding, {kind: 'file', bytes: binary.length})
    assert.ok(content?.equals(binary))
  })

  it('an entry that climbs out (../bin/k3s) is not bin/k3s, and nothing is written for it', async function () {
    const root = join(dir, 'root')
    await mkdir(join(root, 'bin'), {recursive: true})
    await mkdir(join(root, 'inner'))
    await writeFile(join(root, 'bin', 'k3s'), binary)
    const layer = join(dir, 'layer.tar')
    execFileSync('tar', ['-C', join(root, 'inner'), '-P', '-cf', layer, '../bin/k3s']) // -P keeps the ../
    assert.match(execFileSync('tar', ['-P', '-tf', layer], {encoding: 'utf8'}), /^\.\.\/bin\/k3s$/m)
    assert.deepEqual(await extract(layer), {finding: {kind: 'absent'}})
  })

  it('an archive cut in the middle of the file is an error, not a short binary', async function () {
    const layer = await archive({'bin/k3s': binary})
    await writeFile(layer, (await readFile(layer)).subarray(0, 512 + 50_000))
    await assert.rejects(extractFromLayer(layer, 'bin/k3s', target()), /truncated/i)
  })

  it('a file that is not a tar archive is an error', async function () {
    const layer = join(dir, 'layer.tar')
    await writeFile(layer, randomBytes(4096))
    await assert.rejects(extractFromLayer(layer, 'bin/k3s', target()))
    assert.equal(existsSync(target()), false)
  })
})
