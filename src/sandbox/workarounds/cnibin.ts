import {chmod, copyFile, link, lstat, readdir, readlink, rename, rm, stat, symlink} from 'node:fs/promises'
import {basename, dirname, join, resolve} from 'node:path'

import type {Logger} from '../../log/logger.js'
import {probeSymlinkExec} from '../probes/symlink-exec.js'
import {runTool} from '../probes/run-tool.js'
import {probeSignal} from './config-only.js'
import type {AppliedRecord, Workaround, WorkaroundContext} from './workaround.js'
import {pathExists} from '../../util/path-exists.js'

/**
 * k3s unpacks its bundled binaries into `<data-dir>/data/<hash>/bin/` the first time it runs (and never
 * again while that directory exists); the CNI plugins there are symlinks to one multi-call binary
 * (`host-local -> cni`, …), and newer releases add `<data-dir>/data/cni/` with absolute symlinks to it.
 * A 9p root that does not follow them leaves k3s waiting for `host-local`.
 *
 * So hybrid lets k3s unpack first: when nothing is unpacked yet it runs `k3s --data-dir D kubectl version
 * --client`, which unpacks and execs the bundled kubectl (whether that exec works does not matter); then
 * each symlink to `cni` in those directories becomes a real file (a hard link to `cni`, or a copy where the
 * filesystem has no hard links). k3s does not unpack again, so they stay. Undo puts the symlinks back.
 * A k3s that uses the system-wide /var/lib/rancher/k3s/data instead is left alone.
 */
export const cnibin: Workaround = {
  id: 'cnibin',
  blocker:
    'the data dir\'s filesystem does not follow the symlinks of k3s\'s bundled CNI plugins (failed to find plugin "host-local" in path)',
  remedy: 'give k3s real files, not symlinks, for its CNI plugins',
  failurePattern: /failed to find plugin/,
  appliesTo: () => true,
  async probe(ctx) {
    const facts = await probeSymlinkExec(ctx.dataDir, probeSignal(ctx))
    if (!facts.tried) return {found: false, evidence: facts.evidence}
    if (!facts.direct)
      return {
        found: true,
        evidence: facts.evidence,
        unremediable:
          "no program runs from the data dir's filesystem at all (mounted noexec?), so k3s cannot run from it either",
        details: {...facts},
      }
    return {found: !(facts.relative && facts.absolute), evidence: facts.evidence, details: {...facts}}
  },
  async apply(ctx) {
    await unpackK3s(ctx)
    const replaced: Replacement[] = []
    for (const dir of await pluginDirs(ctx.dataDir)) replaced.push(...(await replaceCniLinks(dir)))
    if (replaced.length === 0)
      ctx.logger?.info(`cnibin: no CNI plugin symlinks under ${join(ctx.dataDir, 'data')} to replace`)
    return {id: 'cnibin', details: {replaced}}
  },
  async undo(record, logger) {
    await restoreLinks(record, logger)
  },
  serverConfig: () => ({}),
}

interface Replacement {
  readonly path: string
  /** The symlink's own text, restored by undo. */
  readonly target: string
  readonly how: 'link' | 'copy'
}

/** `<data>/cni` and every unpacked `<data>/<hash>/bin` (real directories only, not current/previous). */
async function pluginDirs(dataDir: string): Promise<string[]> {
  const data = join(dataDir, 'data')
  const entries = await readdir(data, {withFileTypes: true}).catch(() => [])
  const dirs: string[] = []
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.endsWith('-tmp')) continue
    if (entry.name === 'cni') dirs.push(join(data, 'cni'))
    else if (await pathExists(join(data, entry.name, 'bin', 'cni'))) dirs.push(join(data, entry.name, 'bin'))
  }
  return dirs
}

async function unpackK3s(ctx: WorkaroundContext): Promise<void> {
  if ((await pluginDirs(ctx.dataDir)).length > 0 || !ctx.k3sBinary) return
  const result = await runTool(ctx.k3sBinary, ['--data-dir', ctx.dataDir, 'kubectl', 'version', '--client'], {
    signal: AbortSignal.timeout(600_000),
  })
  ctx.logger?.debug({code: result.code}, 'cnibin: asked k3s to unpack its bundled binaries')
}

/** Replace each symlink in `dir` that leads to the `cni` multi-call binary with a real file. */
async function replaceCniLinks(dir: string): Promise<Replacement[]> {
  const replaced: Replacement[] = []
  for (const name of await readdir(dir)) {
    const path = join(dir, name)
    if (!(await lstat(path)).isSymbolicLink()) continue
    const target = await readlink(path)
    if (basename(target) !== 'cni') continue
    const binary = resolve(dirname(path), target)
    const temp = join(dir, `.${name}.hybrid-tmp`)
    await rm(temp, {force: true})
    let how: Replacement['how'] = 'link'
    try {
      await link(binary, temp)
    } catch {
      how = 'copy'
      await copyFile(binary, temp)
      await chmod(temp, (await stat(binary)).mode & 0o7777)
    }
    await rename(temp, path)
    replaced.push({path, target, how})
  }
  return replaced
}

/** Put back each recorded symlink, where a real file hybrid made still stands in its place. */
async function restoreLinks(record: AppliedRecord, logger?: Logger): Promise<void> {
  const replaced = Array.isArray(record.details.replaced) ? (record.details.replaced as Replacement[]) : []
  for (const {path, target} of replaced) {
    if (typeof path !== 'string' || typeof target !== 'string' || basename(target) !== 'cni') continue
    const current = await lstat(path).catch(() => undefined)
    if (!current?.isFile()) {
      logger?.debug(`cnibin: ${path} is no longer hybrid's file; left as it is`)
      continue
    }
    const temp = join(dirname(path), `.${basename(path)}.hybrid-tmp`)
    await rm(temp, {force: true})
    await symlink(target, temp)
    await rename(temp, path)
  }
}
