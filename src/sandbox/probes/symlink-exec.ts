import {copyFile, symlink} from 'node:fs/promises'
import {join} from 'node:path'

import {findProgram} from './find-program.js'
import {runTool, toolFailure} from './run-tool.js'
import {withScratchDir} from './scratch.js'

/**
 * Can a program be run through a symlink on the data dir's filesystem? k3s lays its CNI plugins out as
 * symlinks to one multi-call binary (`bin/host-local -> cni`, and absolute ones in `data/cni/`); some
 * sandboxes' 9p roots do not follow them. Tried the same way: a copy of `true` in a scratch dir there,
 * run directly, through a relative symlink and through an absolute one.
 */
export interface SymlinkExecFacts {
  readonly tried: boolean
  /** The program itself runs from there. */
  readonly direct?: boolean
  readonly relative?: boolean
  readonly absolute?: boolean
  readonly scratch?: string
  readonly evidence: string
}

export async function probeSymlinkExec(dataDir: string, signal: AbortSignal): Promise<SymlinkExecFacts> {
  const program = findProgram('true')
  if (!program) return {tried: false, evidence: 'not tried: no `true` program to copy'}
  let scratch = ''
  return withScratchDir(dataDir, async (dir) => {
    scratch = dir
    const file = join(dir, 'cni')
    await copyFile(program, file)
    await symlink('cni', join(dir, 'host-local'))
    await symlink(file, join(dir, 'host-local-absolute'))
    const results: Record<string, string | true> = {}
    for (const name of ['cni', 'host-local', 'host-local-absolute']) {
      const run = await runTool(join(dir, name), [], {signal})
      results[name] = run.ok || toolFailure(run, name)
    }
    const [direct, relative, absolute] = [
      results.cni === true,
      results['host-local'] === true,
      results['host-local-absolute'] === true,
    ]
    const say = (what: string, r: string | true): string => `${what}: ${r === true ? 'runs' : r}`
    const evidence = [
      say('a program copied there', results.cni),
      say('through a relative symlink', results['host-local']),
      say('through an absolute symlink', results['host-local-absolute']),
    ].join('; ')
    return {tried: true, direct, relative, absolute, scratch, evidence}
  })
}
