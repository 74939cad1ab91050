import {lstat, open, rm, writeFile} from 'node:fs/promises'
import {isAbsolute} from 'node:path'

import {HybridError} from '../../errors.js'
import type {Logger} from '../../log/logger.js'
import {KMSG, probeKmsg} from '../probes/kmsg.js'
import {mountsAt, readMountinfo} from '../probes/mountinfo.js'
import {probeRoot} from '../probes/root.js'
import {runTool, toolFailure} from '../probes/run-tool.js'
import type {AppliedRecord, Workaround} from './workaround.js'

/**
 * The kubelet's OOM watcher opens /dev/kmsg, which gVisor lacks: a bind mount of /dev/null there gives
 * it a device that opens and never yields a message. The record says whether hybrid created the file
 * and which mount it made, so undo removes exactly that and nothing someone else put there.
 */
export const kmsg: Workaround = {
  id: 'kmsg',
  blocker: "/dev/kmsg missing (the kubelet's OOM watcher opens it)",
  remedy: 'create /dev/kmsg and bind-mount /dev/null over it',
  failurePattern: /\/dev\/kmsg/,
  appliesTo: (ctx) => ctx.agent,
  async probe() {
    const facts = await probeKmsg()
    if (facts.opens) return {found: false, evidence: facts.evidence}
    const root = await probeRoot()
    if (root.capSysAdmin) return {found: true, evidence: facts.evidence}
    return {
      found: true,
      evidence: facts.evidence,
      unremediable: `bind-mounting /dev/null over ${KMSG} needs root (CAP_SYS_ADMIN); this is uid ${root.uid}`,
    }
  },
  async intent() {
    return {id: 'kmsg', details: {...(await bindNullIntent(KMSG))}}
  },
  async apply(ctx) {
    return {id: 'kmsg', details: {...(await bindNullOver(KMSG, ctx.logger))}}
  },
  async undo(record, logger) {
    await undoBindNull(record, logger)
  },
  serverConfig: () => ({}),
}

export interface BindRecord {
  readonly path: string
  /** hybrid created the (empty) file the mount sits on. */
  readonly created: boolean
  /** hybrid made the bind mount (false: something was already mounted there, left alone). */
  readonly mounted: boolean
  /** mountinfo's id of that mount. */
  readonly mountId?: number
}

/**
 * What `bindNullOver` is about to do, before it starts: nothing when something is mounted there already;
 * else a bind mount (no id yet: undo then takes the /dev/null bind on `path`, which can only be hybrid's,
 * as nothing was mounted there before), and the file when it does not exist yet.
 */
export async function bindNullIntent(path: string): Promise<BindRecord> {
  if (mountsAt(await readMountinfo(), path).length > 0) return {path, created: false, mounted: false}
  const exists = await lstat(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false
      throw error
    },
  )
  return {path, created: !exists, mounted: true}
}

/** Make `path` open as /dev/null: create it when missing, bind-mount /dev/null over it. Idempotent. */
export async function bindNullOver(path: string, logger?: Logger): Promise<BindRecord> {
  if (mountsAt(await readMountinfo(), path).length > 0) {
    logger?.info(`${path} already has a mount on it; leaving it as it is`)
    await assertOpens(path)
    return {path, created: false, mounted: false}
  }
  let created = false
  try {
    await lstat(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    await writeFile(path, '', {flag: 'wx', mode: 0o600})
    created = true
  }
  const result = await runTool('mount', ['--bind', '/dev/null', path], {signal: AbortSignal.timeout(30_000)})
  if (!result.ok) {
    if (created) await rm(path, {force: true})
    throw new HybridError(
      'WORKAROUND_FAILED',
      `cannot bind-mount /dev/null over ${path}: ${toolFailure(result, 'mount')}`,
    )
  }
  const mountId = mountsAt(await readMountinfo(), path).at(-1)?.id
  const record: BindRecord = {path, created, mounted: true, ...(mountId === undefined ? {} : {mountId})}
  await assertOpens(path)
  return record
}

/** Undo exactly what `bindNullOver` recorded: its mount (only when it is still the top one), then its file. */
export async function undoBindNull(record: AppliedRecord, logger?: Logger): Promise<void> {
  const {path, created, mounted, mountId} = record.details as Partial<BindRecord>
  if (typeof path !== 'string' || !isAbsolute(path)) return
  if (mounted) {
    const stack = mountsAt(await readMountinfo(), path)
    const ours = stack.find((e) => (typeof mountId === 'number' ? e.id === mountId : e.root.endsWith('/null')))
    if (ours) {
      if (stack.at(-1) !== ours)
        throw new HybridError(
          'WORKAROUND_FAILED',
          `something else is mounted on ${path} over hybrid's bind mount of /dev/null; left as it is`,
        )
      const result = await runTool('umount', [path], {signal: AbortSignal.timeout(30_000)})
      if (!result.ok)
        throw new HybridError(
          'WORKAROUND_FAILED',
          `cannot unmount hybrid's bind mount on ${path}: ${toolFailure(result, 'umount')}`,
        )
    } else logger?.debug(`hybrid's bind mount on ${path} is already gone`)
  }
  if (created) {
    const stat = await lstat(path).catch(() => undefined)
    // Only the empty file hybrid made, and only once nothing is mounted on it.
    if (stat?.isFile() && stat.size === 0 && mountsAt(await readMountinfo(), path).length === 0)
      await rm(path, {force: true})
  }
}

async function assertOpens(path: string): Promise<void> {
  try {
    await (await open(path, 'r')).close()
  } catch (error) {
    throw new HybridError(
      'WORKAROUND_FAILED',
      `${path} still does not open after the bind mount (${(error as NodeJS.ErrnoException).code})`,
    )
  }
}
