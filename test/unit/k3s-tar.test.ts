import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdir, mkdtemp, readFile, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {type TarFinding, TarFileExtractor} from '../../src/k3s/tar-extract.js'

/**
 * The streaming tar reader that takes bin/k3s out of an image layer, on archives made by GNU tar in each of
 * its formats, fed in awkward chunk sizes (headers and bodies split across chunks).
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

  /** Make a tree under dir/root with `files`, tar it with `args`, return the archive. */
  async function archive(files: Record<string, Buffer | {link: string}>, args: string[] = []): Promise<Buffer> {
    const root = join(dir, 'root')
    for (const [name, content] of Object.entries(files)) {
      await mkdir(dirname(join(root, name)), {recursive: true})
      if (Buffer.isBuffer(content)) await writeFile(join(root, name), content)
      else await symlink(content.link, join(root, name))
    }
    const out = join(dir, 'layer.tar')
    execFileSync('tar', ['-C', root, ...args, '-cf', out, '.'])
    return readFile(out)
  }

  /** Feed `tar` to the extractor in chunks of 1..700 bytes; return what it found and what it wrote. */
  async function extract(tar: Buffer, wanted = 'bin/k3s'): Promise<{finding: TarFinding; content: Buffer}> {
    let content = Buffer.alloc(0)
    const extractor = new TarFileExtractor(wanted, {
      async start() {
        content = Buffer.alloc(0)
      },
      async write(chunk) {
        content = Buffer.concat([content, chunk])
      },
    })
    const chunks: Buffer[] = []
    for (let offset = 0, size = 1; offset < tar.length; offset += size, size = ((size * 7 + 3) % 700) + 1)
      chunks.push(tar.subarray(offset, offset + size))
    await pipeline(Readable.from(chunks), extractor)
    return {finding: extractor.finding, content}
  }

  for (const format of ['gnu', 'ustar', 'pax']) {
    it(`finds ./bin/k3s among other files (${format} format)`, async function () {
      const tar = await archive(
        {'bin/k3s': binary, 'bin/other': randomBytes(777), 'etc/os-release': Buffer.from('x\n')},
        [`--format=${format}`],
      )
      const {finding, content} = await extract(tar)
      assert.deepEqual(finding, {kind: 'file', bytes: binary.length})
      assert.ok(content.equals(binary))
    })
  }

  it('long paths: GNU L records, ustar prefixes and pax path records', async function () {
    const long = `${'deep/'.repeat(25)}k3s` // 128 characters
    for (const format of ['gnu', 'ustar', 'pax']) {
      await rm(join(dir, 'root'), {recursive: true, force: true})
      const tar = await archive({[long]: binary}, [`--format=${format}`])
      const {finding, content} = await extract(tar, long)
      assert.equal(finding.kind, 'file', format)
      assert.ok(content.equals(binary), format)
    }
  })

  it('absent, a whiteout, an opaque directory, a symlink', async function () {
    assert.deepEqual((await extract(await archive({'etc/x': Buffer.from('x')}))).finding, {kind: 'absent'})
    await rm(join(dir, 'root'), {recursive: true, force: true})
    assert.deepEqual((await extract(await archive({'bin/.wh.k3s': Buffer.alloc(0)}))).finding, {kind: 'whiteout'})
    await rm(join(dir, 'root'), {recursive: true, force: true})
    assert.deepEqual(
      (await extract(await archive({'bin/.wh..wh..opq': Buffer.alloc(0), 'bin/ctr': Buffer.from('c')}))).finding,
      {kind: 'whiteout'},
    )
    await rm(join(dir, 'root'), {recursive: true, force: true})
    assert.deepEqual((await extract(await archive({'bin/k3s': {link: 'k3s-real'}, 'bin/k3s-real': binary}))).finding, {
      kind: 'link',
      target: 'k3s-real',
    })
  })

  it('a file stored twice (tar --append): the last copy wins', async function () {
    const first = await archive({'bin/k3s': Buffer.from('old')})
    const out = join(dir, 'layer.tar')
    await writeFile(out, first)
    await writeFile(join(dir, 'root', 'bin', 'k3s'), binary)
    execFileSync('tar', ['-C', join(dir, 'root'), '-rf', out, './bin/k3s'])
    const {finding, content} = await extract(await readFile(out))
    assert.deepEqual(finding, {kind: 'file', bytes: binary.length})
    assert.ok(content.equals(binary))
  })

  it('an archive cut in the middle of the file is an error, not a short binary', async function () {
    const tar = await archive({'bin/k3s': binary})
    await assert.rejects(extract(tar.subarray(0, 512 + 50_000)), /ends in the middle of a tar entry/)
  })
})
