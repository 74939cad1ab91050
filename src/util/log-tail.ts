import {open} from 'node:fs/promises'

/** The last `count` lines of a file (read from its end; '' lines dropped). */
export async function tailLines(file: string, count: number): Promise<string[]> {
  try {
    const handle = await open(file, 'r')
    try {
      const {size} = await handle.stat()
      const length = Math.min(size, 64 * 1024)
      const buffer = Buffer.alloc(length)
      await handle.read(buffer, 0, length, size - length)
      return buffer
        .toString('utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .slice(-count)
    } finally {
      await handle.close()
    }
  } catch {
    return []
  }
}
