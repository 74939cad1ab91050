import {HybridError, messageOf} from '../../errors.js'
import type {PlanContext} from '../../plan/index.js'
import {type ClusterState, forgetWorkaround, readState} from '../../state/cluster-state.js'
import {CONTROL_PLANE_HOST} from '../host.js'
import {workaroundById} from './index.js'

/**
 * Undo the workarounds the state records, newest first, from their records alone, so this works after
 * hybrid crashed. One failing undo does not stop the others; it stays recorded (a second `down` tries
 * it again). Returns the state as recorded afterwards.
 */
export async function undoRecordedWorkarounds(
  ctx: Pick<PlanContext, 'wet' | 'dryRun' | 'logger'>,
  cluster: string,
  known: ClusterState | undefined,
): Promise<ClusterState | undefined> {
  // The file, not memory, says what is still applied: a supervisor may have undone some meanwhile.
  let state = ctx.dryRun ? known : await readState(cluster)
  const records = [...(state?.workarounds ?? [])].reverse()
  const failures: string[] = []
  for (const record of records) {
    const workaround = workaroundById(record.id)
    try {
      await ctx.wet(CONTROL_PLANE_HOST, `undo workaround ${record.id}`, () => workaround.undo(record, ctx.logger))
      if (!ctx.dryRun) state = await forgetWorkaround(cluster, record.id)
    } catch (error) {
      ctx.logger.error({workaround: record.id}, `could not undo workaround ${record.id}: ${messageOf(error)}`)
      failures.push(`${record.id}: ${messageOf(error)}`)
    }
  }
  if (failures.length > 0) {
    const ids = failures.map((f) => f.split(':')[0]).join(', ')
    const noun = failures.length === 1 ? 'workaround' : 'workarounds'
    const sentence = `could not undo ${noun} ${ids} (they stay recorded; \`hybrid down\` tries again)`
    throw new HybridError('UNDO_FAILED', sentence, {details: failures})
  }
  return state
}
