import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

/**
 * A fresh HYBRID_STATE_DIR for each test of the describe block it is called in (restored after), so state
 * tests never touch the user's. Returns a getter for the current directory.
 */
export function useTempStateDir(prefix: string): () => string {
  let dir = ''
  let saved: string | undefined
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix))
    saved = process.env.HYBRID_STATE_DIR
    process.env.HYBRID_STATE_DIR = dir
  })
  afterEach(async () => {
    if (saved === undefined) delete process.env.HYBRID_STATE_DIR
    else process.env.HYBRID_STATE_DIR = saved
    await rm(dir, {recursive: true, force: true})
  })
  return () => dir
}
