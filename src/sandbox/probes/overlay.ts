import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {RootFacts} from './root.js'
import {runTool, toolFailure} from './run-tool.js'
import {withScratchDir} from './scratch.js'

/**
 * Would containerd's overlayfs snapshotter accept the data dir? What containerd checks
 * (overlayutils.Supported): the filesystem reports d_type in directory entries, and an overlay with two
 * lower directories mounts in a temp dir there. Done the same way, in a scratch dir on that filesystem;
 * the mount is undone and the dir removed afterwards (also at the time limit).
 */
export interface OverlayFacts {
  /** False when the probe could not try (not root). */
  readonly tried: boolean
  readonly mounted?: boolean
  /** undefined: could not be checked in this Node.js. */
  readonly dType?: boolean
  /** The scratch dir the probe used (removed again). */
  readonly scratch?: string
  readonly evidence: string
}

export async function probeOverlay(dataDir: string, root: RootFacts, signal: AbortSignal): Promise<OverlayFacts> {
  if (!root.capSysAdmin)
    return {tried: false, evidence: `not tried: an overlay mount needs CAP_SYS_ADMIN (uid ${root.uid})`}
  let scratch = ''
  const result = await withScratchDir(dataDir, async (dir) => {
    scratch = dir
    const dType = await supportsDType(join(dir, 'd_type'))
    const [lower1, lower2, upper, work, merged] = ['lower1', 'lower2', 'upper', 'work', 'merged'].map((name) =>
      join(dir, name),
    )
    for (const d of [lower1, lower2, upper, work, merged]) await mkdir(d)
    const mount = await runTool(
      'mount',
      ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower2}:${lower1},upperdir=${upper},workdir=${work}`, merged],
      {signal},
    )
    if (mount.ok) await runTool('umount', [merged], {signal: AbortSignal.timeout(10_000)})
    return {dType, mounted: mount.ok, failure: mount.ok ? '' : toolFailure(mount, 'mount')}
  })
  const dTypeText =
    result.dType === undefined
      ? 'd_type not checked'
      : result.dType
        ? 'd_type supported'
        : 'd_type NOT supported (entries come back DT_UNKNOWN)'
  const mountText = result.mounted
    ? 'an overlay with two lower dirs mounts there'
    : `an overlay mount there fails: ${result.failure}`
  return {tried: true, mounted: result.mounted, dType: result.dType, scratch, evidence: `${mountText}; ${dTypeText}`}
}

interface RawFsBinding {
  readdir(path: string, encoding: string, withTypes: true): [string[], number[]]
}

/**
 * containerd's fs.SupportsDType: create a file and read the directory's raw entries; DT_UNKNOWN (0)
 * means the filesystem does not fill d_type. Node's public readdir hides this (it lstat()s unknown
 * entries), so the raw entries come from Node's own fs binding; undefined when that is unavailable.
 */
async function supportsDType(dir: string): Promise<boolean | undefined> {
  await mkdir(dir)
  await writeFile(join(dir, 'file'), '')
  let binding: RawFsBinding
  try {
    binding = (process as unknown as {binding(name: string): RawFsBinding}).binding('fs')
  } catch {
    return undefined
  }
  if (typeof binding?.readdir !== 'function') return undefined
  try {
    const [names, types] = binding.readdir(dir, 'utf8', true)
    const index = names.indexOf('file')
    if (index === -1 || !Array.isArray(types)) return undefined
    return types[index] !== 0
  } catch {
    return undefined
  }
}
