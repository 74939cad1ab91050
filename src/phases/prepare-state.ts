import {mkdir, rm, writeFile} from 'node:fs/promises'
import {join, resolve} from 'node:path'

import {HybridError, messageOf} from '../errors.js'
import type {Phase} from '../plan/index.js'
import {stopControlPlaneOf} from '../sandbox/control-plane-stop.js'
import {currentLocation} from '../sandbox/location.js'
import {mountsUnder, readMountinfo} from '../sandbox/probes/mountinfo.js'
import {undoRecordedWorkarounds} from '../sandbox/workarounds/undo-recorded.js'
import {type ClusterState, createState, readState, removeRuntimeFiles, STATE_VERSION} from '../state/cluster-state.js'
import {ownerAlive} from '../state/owner.js'
import {controlPlaneSettings} from '../state/settings.js'
import {ownCommandLine} from '../util/processes.js'
import {
  CONTROL_PLANE_HOST,
  type ClusterContext,
  type InventoryInput,
  type LoadedState,
  type OwnedState,
} from './context.js'

/** What prepare-state remembers for its clean-up: the topmost directory it created for the data dir. */
interface Created {
  /** This run created the state (a failed `up` removes it again). */
  readonly createdState: boolean
  readonly createdDataDir?: string
}

/**
 * A fresh state owned by this process, so every later step is recorded and a crash can be undone. The
 * action has already decided that the cluster is not up (src/state/up-decision.ts); leftovers of a hybrid
 * that died are stopped and undone first. Then the data dir exists and is writable.
 */
export const prepareState: Phase<ClusterContext & InventoryInput & LoadedState, OwnedState & Created> = {
  title: 'prepare the cluster state',
  async run(ctx) {
    const {inventory, cluster} = ctx
    if (ctx.state && (await ownerAlive(ctx.state))) {
      const owner = ctx.state.supervisor?.pid
      throw new HybridError(
        'CLUSTER_BUSY',
        `cluster ${cluster} is owned by another hybrid (pid ${owner}) at this moment`,
      )
    }
    if (ctx.state) {
      ctx.logger.warn(
        `cluster ${cluster} has leftovers of a hybrid that stopped without cleaning up; undoing them first`,
      )
      const state = await stopControlPlaneOf(ctx, {cluster, state: ctx.state})
      await undoRecordedWorkarounds(ctx, cluster, state)
      await ctx.wet(CONTROL_PLANE_HOST, `remove the stale state of cluster ${cluster}`, () =>
        removeRuntimeFiles(cluster),
      )
    }
    const now = new Date().toISOString()
    const state: ClusterState = {
      version: STATE_VERSION,
      cluster,
      inventory: inventory.file,
      settings: controlPlaneSettings(inventory),
      dataDir: inventory.controlPlane.dataDir,
      apiPort: inventory.controlPlane.apiPort,
      createdAt: now,
      workarounds: [],
      kubeconfig: ctx.paths.kubeconfig,
      supervisor: {pid: process.pid, startedAt: now, detached: false, argv: ownCommandLine()},
      location: await currentLocation(),
      phase: 'preparing',
    }
    await ctx.wet(CONTROL_PLANE_HOST, `record cluster ${cluster} in ${ctx.paths.state}`, () => createState(state))
    const createdDataDir = await ensureDataDir(ctx, inventory.controlPlane.dataDir)
    return {state, createdState: !ctx.dryRun, ...(createdDataDir ? {createdDataDir} : {})}
  },
  async cleanUp(ctx) {
    // run() may have failed after creating the state and before returning: then the file names this
    // process as the owner (no supervisor took it over yet).
    const recorded = ctx.createdState ? undefined : await readState(ctx.cluster).catch(() => undefined)
    if (!ctx.createdState && recorded?.supervisor?.pid !== process.pid) return
    await removeRuntimeFiles(ctx.cluster)
    if (ctx.createdDataDir) await removeCreatedDir(ctx.createdDataDir, ctx)
  },
}

const WHY: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the filesystem is read-only',
  ENOTDIR: 'a part of the path is not a directory',
  ENOSPC: 'no space left',
}

/**
 * The data dir exists (created 0700 when missing) and is writable; else one sentence saying why not.
 * Checked before anything else touches it (preflight probes it, k3s writes into it). Returns the topmost
 * directory it created, if any.
 */
async function ensureDataDir(ctx: ClusterContext, dataDir: string): Promise<string | undefined> {
  const fail = (error: unknown): never => {
    const why = WHY[(error as NodeJS.ErrnoException).code ?? ''] ?? messageOf(error)
    throw new HybridError(
      'DATA_DIR_NOT_WRITABLE',
      `the data dir ${dataDir} (spec.controlPlane.dataDir) is not writable: ${why}`,
    )
  }
  let created: string | undefined
  try {
    created = await ctx.wet(CONTROL_PLANE_HOST, `create the data dir ${dataDir} (0700) if missing`, () =>
      mkdir(dataDir, {recursive: true, mode: 0o700}),
    )
  } catch (error) {
    fail(error)
  }
  if (ctx.dryRun) return undefined
  const probe = join(dataDir, `.hybrid-write-test-${process.pid}`)
  try {
    await writeFile(probe, '', {flag: 'wx', mode: 0o600})
  } catch (error) {
    if (created) await removeCreatedDir(created, ctx)
    fail(error)
  } finally {
    await rm(probe, {force: true})
  }
  return created
}

/**
 * A data dir this failed `up` created goes again, unless something is mounted below it (a recursive
 * removal would then reach into the mounted filesystem): then it stays, and the log says why.
 */
async function removeCreatedDir(dataDir: string, ctx: ClusterContext): Promise<void> {
  const root = resolve(dataDir)
  const mounted = mountsUnder(await readMountinfo(), root).map((m) => m.mountPoint)
  if (mounted.length > 0) {
    ctx.logger.warn({mounts: mounted}, `leaving ${root} in place: something is mounted below it`)
    return
  }
  await rm(root, {recursive: true, force: true})
}
