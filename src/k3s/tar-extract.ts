import {Writable} from 'node:stream'

/**
 * A streaming reader of one tar archive (an image layer, after gunzip) that writes one wanted file's
 * content to a sink and skips everything else, so a 70 MiB layer is never held in memory. Understands
 * ustar (with its name prefix), GNU long names (`L`), pax `path`/`size` records and base-256 sizes, and
 * OCI whiteouts (`.wh.<name>`, `.wh..wh..opq`), which hide the file of lower layers.
 */
export type TarFinding =
  {kind: 'file'; bytes: number} | {kind: 'link'; target: string} | {kind: 'whiteout'} | {kind: 'absent'}

export interface TarSink {
  start(): Promise<void>
  write(chunk: Buffer): Promise<void>
}

const BLOCK = 512

export class TarFileExtractor extends Writable {
  private buffered = Buffer.alloc(0)
  /** Bytes of the current entry's body still to come, and of padding after it. */
  private remaining = 0
  private padding = 0
  private entry: {name: string; type: string; meta: boolean} | undefined
  private meta: Buffer[] = []
  private longName: string | undefined
  private paxPath: string | undefined
  private paxSize: number | undefined
  private ended = false
  private written = 0
  private fileSeen = false
  private link: string | undefined
  private whiteout = false

  /**
   * `wanted` is a path in the image's root without a leading slash, e.g. `bin/k3s`. `sink.start` is called
   * each time the file begins (a layer may hold it twice; the last copy wins), `sink.write` with its bytes.
   */
  constructor(
    private readonly wanted: string,
    private readonly sink: TarSink,
  ) {
    super()
  }

  get finding(): TarFinding {
    if (this.fileSeen) return {kind: 'file', bytes: this.written}
    if (this.link !== undefined) return {kind: 'link', target: this.link}
    return this.whiteout ? {kind: 'whiteout'} : {kind: 'absent'}
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.consume(chunk).then(() => done(), done)
  }

  override _final(done: (error?: Error | null) => void): void {
    if (this.remaining > 0) done(new Error('the layer ends in the middle of a tar entry'))
    else done()
  }

  private async consume(input: Buffer): Promise<void> {
    let chunk = input
    while (chunk.length > 0) {
      if (this.ended) return // trailing zero blocks and whatever follows the end marker
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length)
        await this.body(chunk.subarray(0, take))
        this.remaining -= take
        chunk = chunk.subarray(take)
        if (this.remaining === 0) this.finishEntry()
        continue
      }
      if (this.padding > 0) {
        const skip = Math.min(this.padding, chunk.length)
        this.padding -= skip
        chunk = chunk.subarray(skip)
        continue
      }
      const need = BLOCK - this.buffered.length
      this.buffered = Buffer.concat([this.buffered, chunk.subarray(0, need)])
      chunk = chunk.subarray(need)
      if (this.buffered.length === BLOCK) {
        const header = this.buffered
        this.buffered = Buffer.alloc(0)
        await this.header(header)
      }
    }
  }

  private async header(block: Buffer): Promise<void> {
    if (block.every((byte) => byte === 0)) {
      this.ended = true
      return
    }
    const type = String.fromCharCode(block[156] || 0x30)
    const size = this.paxSize ?? parseSize(block.subarray(124, 136))
    const prefix = text(block.subarray(345, 500))
    const ustar = text(block.subarray(257, 262)) === 'ustar'
    const plain = text(block.subarray(0, 100))
    const name = this.paxPath ?? this.longName ?? (ustar && prefix ? `${prefix}/${plain}` : plain)
    const meta = type === 'x' || type === 'g' || type === 'L' || type === 'K'
    if (!meta) {
      this.paxPath = undefined
      this.paxSize = undefined
      this.longName = undefined
      if (this.classify(normalize(name), type, text(block.subarray(157, 257)))) await this.sink.start()
    }
    this.entry = {name: normalize(name), type, meta}
    this.remaining = size
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK
    if (size === 0) this.finishEntry()
  }

  /** Record what this entry says about the wanted file; true when it is the file's content that follows. */
  private classify(name: string, type: string, linkName: string): boolean {
    const slash = this.wanted.lastIndexOf('/')
    const dir = slash >= 0 ? this.wanted.slice(0, slash + 1) : ''
    const base = this.wanted.slice(slash + 1)
    if (name === `${dir}.wh.${base}` || name === `${dir}.wh..wh..opq`) this.whiteout = true
    if (name !== this.wanted) return false
    if (type === '0' || type === '7') {
      this.fileSeen = true
      this.link = undefined
      this.written = 0
      return true
    }
    if (type === '1' || type === '2') {
      this.fileSeen = false
      this.link = linkName
    }
    return false
  }

  private async body(data: Buffer): Promise<void> {
    const entry = this.entry
    if (!entry) return
    if (entry.meta) this.meta.push(Buffer.from(data))
    else if (entry.name === this.wanted && this.fileSeen && (entry.type === '0' || entry.type === '7')) {
      await this.sink.write(data)
      this.written += data.length
    }
  }

  private finishEntry(): void {
    const entry = this.entry
    this.entry = undefined
    if (!entry?.meta) return
    const data = Buffer.concat(this.meta)
    this.meta = []
    if (entry.type === 'L') this.longName = text(data)
    if (entry.type === 'x') {
      const records = parsePax(data)
      if (records.path !== undefined) this.paxPath = records.path
      if (records.size !== undefined) this.paxSize = Number(records.size)
    }
  }
}

/** NUL-terminated field as text. */
function text(field: Buffer): string {
  const end = field.indexOf(0)
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8')
}

/** Octal, or base-256 when the high bit of the first byte is set (GNU, for sizes past 8 GiB). */
function parseSize(field: Buffer): number {
  if (field[0] & 0x80) {
    let value = field[0] & 0x7f
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]
    return value
  }
  const digits = text(field).trim()
  return digits === '' ? 0 : Number.parseInt(digits, 8)
}

/** pax records: `<length> <key>=<value>\n`, length counting the whole record. */
function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {}
  let offset = 0
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset)
    if (space === -1) break
    const length = Number.parseInt(data.subarray(offset, space).toString('ascii'), 10)
    if (!Number.isInteger(length) || length <= 0) break
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8')
    const equals = record.indexOf('=')
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1)
    offset += length
  }
  return records
}

function normalize(name: string): string {
  return name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '')
}
