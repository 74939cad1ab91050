import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join, resolve, sep} from 'node:path'

import {HybridError, messageOf} from '../errors.js'
import type {Phase} from '../plan/index.js'
import {type ClusterState, createState, removeRuntimeFiles} from '../state/cluster-state.js'
import {ownCommandLine} from '../state/processes.js'
import {changedSettings, controlPlaneSettings} from '../state/settings.js'
import {CONTROL_PLANE_HOST, type ControlPlaneContext} from './control-plane-context.js'
import {ownerAlive} from './load-state.js'
import {stopRecorded} from './stop-control-plane.js'
import {undoRecorded} from './undo-workarounds.js'

/**
 * `up`'s view of the state: already up as the inventory says (nothing to do), up with other settings
 * (refused: `down` first), leftovers of a hybrid that died (stopped and undone first), or nothing. Then
 * a fresh state, owned by this process, so every later step is recorded and a crash can be undone.
 */
export const prepareState: Phase<ControlPlaneContext> = {
  title: 'prepare the cluster state',
  async run(ctx) {
    const inventory = ctx.inventory!
    const previous = ctx.state
    if (previous && (await ownerAlive(previous))) {
      const changed = changedSettings(previous.settings as Record<string, unknown>, controlPlaneSettings(inventory))
      if (changed.length === 0) {
        ctx.alreadyUp = true
        return
      }
      throw new HybridError(
        `cluster ${ctx.cluster} is up with other settings (${changed.join(', ')} changed); \`hybrid down\`, then \`hybrid up\`, applies them`,
      )
    }
    if (previous) {
      ctx.logger.warn(
        `cluster ${ctx.cluster} has leftovers of a hybrid that stopped without cleaning up; undoing them first`,
      )
      await stopRecorded(ctx)
      await undoRecorded(ctx)
      await ctx.wet(CONTROL_PLANE_HOST, `remove the stale state of cluster ${ctx.cluster}`, () =>
        removeRuntimeFiles(ctx.cluster),
      )
    }
    const state: ClusterState = {
      version: 1,
      cluster: ctx.cluster,
      inventory: inventory.file,
      settings: controlPlaneSettings(inventory),
      dataDir: inventory.controlPlane.dataDir,
      apiPort: inventory.controlPlane.apiPort,
      createdAt: new Date().toISOString(),
      workarounds: [],
      kubeconfig: ctx.paths.kubeconfig,
      supervisor: {pid: process.pid, startedAt: new Date().toISOString(), detached: false, argv: ownCommandLine()},
      phase: 'preparing',
    }
    await ctx.wet(CONTROL_PLANE_HOST, `record cluster ${ctx.cluster} in ${ctx.paths.state}`, () => createState(state))
    ctx.state = state
    ctx.createdState = true
    await ensureDataDir(ctx, inventory.controlPlane.dataDir)
  },
  async cleanUp(ctx) {
    if (!ctx.createdState) return
    await removeRuntimeFiles(ctx.cluster)
    ctx.state = undefined
    if (ctx.createdDataDir) await removeCreatedDir(ctx.createdDataDir, ctx)
  },
}

/**
 * The data dir exists (created 0700 when missing) and is writable; else one sentence saying why not.
 * Checked before anything else touches it (preflight probes it, k3s writes into it).
 */
async function ensureDataDir(ctx: ControlPlaneContext, dataDir: string): Promise<void> {
  const fail = (error: unknown): never => {
    const code = (error as NodeJS.ErrnoException).code
    const why =
      code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EROFS'
          ? 'the filesystem is read-only'
          : code === 'ENOTDIR'
            ? 'a part of the path is not a directory'
            : code === 'ENOSPC'
              ? 'no space left'
              : messageOf(error)
    throw new HybridError(`the data dir ${dataDir} (spec.controlPlane.dataDir) is not writable: ${why}`)
  }
  try {
    const created = await ctx.wet(CONTROL_PLANE_HOST, `create the data dir ${dataDir} (0700) if missing`, () =>
      mkdir(dataDir, {recursive: true, mode: 0o700}),
    )
    if (created) ctx.createdDataDir = created
  } catch (error) {
    fail(error)
  }
  if (ctx.dryRun) return
  const probe = join(dataDir, `.hybrid-write-test-${process.pid}`)
  try {
    await writeFile(probe, '', {flag: 'wx', mode: 0o600})
  } catch (error) {
    fail(error)
  } finally {
    await rm(probe, {force: true})
  }
}

/**
 * A data dir this failed `up` created (the topmost directory it created) goes again, unless something is mounted below it (a recursive
 * removal would then reach into the mounted filesystem): then it stays, and the log says why.
 */
async function removeCreatedDir(dataDir: string, ctx: ControlPlaneContext): Promise<void> {
  const root = resolve(dataDir)
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '')
  const mounted = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && (point === root || point.startsWith(root + sep)))
  if (mounted.length > 0) {
    ctx.logger.warn({mounts: mounted}, `leaving ${root} in place: something is mounted below it`)
    return
  }
  await rm(root, {recursive: true, force: true})
}
