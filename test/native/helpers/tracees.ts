import {execFile} from 'node:child_process'
import {mkdir, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

const run = promisify(execFile)

/** The tracee sources (test/native/fixtures), found from the compiled test under dist/. */
export const FIXTURES = fileURLToPath(new URL('../../../../test/native/fixtures/', import.meta.url))

/**
 * A temp directory that tracees are compiled into, with Go's cache and GOPATH inside it, removed by
 * `remove()`. Readable from inside gVisor, whose root is the host's filesystem.
 */
export class TraceeBuilds {
  private constructor(readonly dir: string) {}

  static async create(): Promise<TraceeBuilds> {
    return new TraceeBuilds(await mkdtemp(join(tmpdir(), 'hybrid-tracees-')))
  }

  /** cc -O2 fixtures/NAME.c → DIR/NAME */
  async c(name: string): Promise<string> {
    const out = join(this.dir, name)
    await run('cc', ['-O2', '-Wall', '-o', out, join(FIXTURES, `${name}.c`)])
    return out
  }

  /** go build fixtures/NAME/main.go → DIR/NAME (standard library only, no module). */
  async go(name: string): Promise<string> {
    const out = join(this.dir, name)
    const env = {
      ...process.env,
      GOCACHE: join(this.dir, 'gocache'),
      GOPATH: join(this.dir, 'gopath'),
      GO111MODULE: 'off',
      CGO_ENABLED: '0',
    }
    await mkdir(env.GOCACHE, {recursive: true})
    await run('go', ['build', '-o', out, join(FIXTURES, name, 'main.go')], {env, timeout: 300_000})
    return out
  }

  async remove(): Promise<void> {
    await rm(this.dir, {recursive: true, force: true})
  }
}
