import {HybridError, messageOf} from '../errors.js'
import type {Phase} from '../plan/index.js'
import {workaroundById} from '../sandbox/workarounds/index.js'
import {forgetWorkaround, readState} from '../state/cluster-state.js'
import {CONTROL_PLANE_HOST, type ControlPlaneContext} from './control-plane-context.js'

/** Undo the workarounds the state records, newest first (DESIGN.md §4); each is forgotten once undone. */
export const undoWorkarounds: Phase<ControlPlaneContext> = {
  title: 'undo the workarounds',
  shouldRun: (ctx) => (ctx.state?.workarounds.length ?? 0) > 0,
  async run(ctx) {
    await undoRecorded(ctx)
  },
}

/**
 * Every recorded workaround is undone from its record alone, so this works after hybrid crashed. One
 * failing undo does not stop the others; it stays recorded (a second `down` tries it again).
 */
export async function undoRecorded(ctx: ControlPlaneContext): Promise<void> {
  // The file, not memory, says what is still applied: a supervisor may have undone some meanwhile.
  if (!ctx.dryRun) ctx.state = await readState(ctx.cluster)
  const records = [...(ctx.state?.workarounds ?? [])].reverse()
  const failures: string[] = []
  for (const record of records) {
    const workaround = workaroundById(record.id)
    try {
      await ctx.wet(CONTROL_PLANE_HOST, `undo workaround ${record.id}`, () => workaround.undo(record, ctx.logger))
      if (!ctx.dryRun) ctx.state = await forgetWorkaround(ctx.cluster, record.id)
    } catch (error) {
      ctx.logger.error({workaround: record.id}, `could not undo workaround ${record.id}: ${messageOf(error)}`)
      failures.push(`${record.id}: ${messageOf(error)}`)
    }
  }
  if (failures.length > 0) {
    throw new HybridError(
      `could not undo ${failures.length === 1 ? 'workaround' : 'workarounds'} ${failures.map((f) => f.split(':')[0]).join(', ')} (they stay recorded; \`hybrid down\` tries again)`,
      1,
      failures,
    )
  }
}
