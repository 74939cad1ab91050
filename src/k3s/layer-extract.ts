import {createReadStream, createWriteStream, type WriteStream} from 'node:fs'
import {open} from 'node:fs/promises'
import {posix} from 'node:path'
import {finished} from 'node:stream/promises'
import * as zlib from 'node:zlib'

import {Parser, type ReadEntry} from 'tar'

/**
 * One file taken out of one image layer (a tar archive, plain, gzip or zstd) with node-tar, streamed to
 * a file of the caller's, so a 70 MiB layer is never held in memory. node-tar reads the formats (ustar,
 * GNU long names, pax, base-256 sizes) and, in strict mode, refuses a damaged or truncated archive.
 * What is ours is the OCI layer rule: a whiteout (`.wh.<name>`, or `.wh..wh..opq` in its directory)
 * hides the file of the layers below. Nothing is written at a path the archive names: only at `target`.
 */
export type TarFinding =
  {kind: 'file'; bytes: number} | {kind: 'link'; target: string} | {kind: 'whiteout'} | {kind: 'absent'}

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile'])
const LINK_TYPES = new Set(['SymbolicLink', 'Link'])

/**
 * Read `layerFile` and write the content of `wanted` (a path in the image's root without a leading slash,
 * e.g. `bin/k3s`) to `target` (mode 0600), created only when the file is there. A layer may hold the file
 * twice (`tar --append`): the last copy wins.
 */
export async function extractFromLayer(layerFile: string, wanted: string, target: string): Promise<TarFinding> {
  await assertDecompressible(layerFile)
  const whiteouts = new Set([
    posix.join(posix.dirname(wanted), `.wh.${posix.basename(wanted)}`),
    posix.join(posix.dirname(wanted), '.wh..wh..opq'),
  ])
  let finding: TarFinding = {kind: 'absent'}
  let whiteout = false
  let out: WriteStream | undefined
  // Copies are written one after the other; until its turn an entry stays paused, and the reading with it.
  let writing: Promise<void> = Promise.resolve()

  const parser = new Parser({
    strict: true,
    filter: (path) => normalize(path) === wanted || whiteouts.has(normalize(path)),
    onReadEntry(entry: ReadEntry) {
      const name = normalize(entry.path)
      if (whiteouts.has(name)) whiteout = true
      if (name === wanted && FILE_TYPES.has(entry.type)) {
        finding = {kind: 'file', bytes: entry.size ?? 0}
        writing = writing
          .then(async () => {
            out = createWriteStream(target, {mode: 0o600})
            entry.pipe(out)
            await finished(out)
          })
          .catch((error: Error) => parser.abort(error))
        return
      }
      if (name === wanted && LINK_TYPES.has(entry.type)) finding = {kind: 'link', target: entry.linkpath ?? ''}
      entry.resume()
    },
  })
  const input = createReadStream(layerFile)
  try {
    await new Promise<void>((resolve, reject) => {
      parser.on('end', () => resolve())
      parser.on('error', reject)
      input.on('error', (error) => parser.abort(error))
      input.pipe(parser)
    })
    await writing
  } catch (error) {
    input.destroy()
    out?.destroy()
    throw error
  }
  if (finding.kind === 'absent' && whiteout) return {kind: 'whiteout'}
  return finding
}

/** `./bin/k3s`, `/bin/k3s` and `bin/k3s/` all name `bin/k3s`. */
function normalize(name: string): string {
  return name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '')
}

const ZSTD_MAGIC = 0xfd2fb528

/** node:zlib has zstd from Node 22.15 on; on an older Node a zstd layer gets this sentence, not a zlib error. */
async function assertDecompressible(layerFile: string): Promise<void> {
  if ('createZstdDecompress' in zlib) return
  const handle = await open(layerFile, 'r')
  const magic = Buffer.alloc(4)
  try {
    await handle.read(magic, 0, 4, 0)
  } finally {
    await handle.close()
  }
  if (magic.readUInt32LE(0) === ZSTD_MAGIC)
    throw new Error(`it is zstd-compressed, which Node.js ${process.version} cannot decompress`)
}
