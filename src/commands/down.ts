import {dryRunFlag, inventoryFlag} from '../cli/flags.js'
import {HybridCommand} from '../cli/hybrid-command.js'
import {HybridError} from '../errors.js'
import type {ControlPlaneContext} from '../phases/control-plane-context.js'
import {loadState} from '../phases/load-state.js'
import {removeState} from '../phases/remove-state.js'
import {stopControlPlane} from '../phases/stop-control-plane.js'
import {undoWorkarounds} from '../phases/undo-workarounds.js'
import {
  createPlanContext,
  createProgress,
  handleInterrupts,
  type Phase,
  progressMode,
  renderChanges,
  runPlan,
} from '../plan/index.js'
import {clusterPaths} from '../state/cluster-state.js'
import {resolveCluster} from '../state/current.js'

export interface DownResult {
  readonly cluster: string
  /** down: it was up (or had leftovers) and is now down; not-up: there was nothing to do. */
  readonly outcome: 'down' | 'not-up' | 'dry-run'
  readonly changes: readonly string[]
}

const DOWN_PHASES: readonly Phase<ControlPlaneContext>[] = [loadState, stopControlPlane, undoWorkarounds, removeState]

export default class Down extends HybridCommand {
  static override summary = 'Stop the cluster: stop k3s and its supervisor, undo every workaround'
  static override description =
    'Works from the state file alone, so it also cleans up after a hybrid that crashed. Safe to run twice. The data dir stays (the next `up` resumes the same cluster).'
  static override examples = ['<%= config.bin %> down', '<%= config.bin %> down --inventory lab.yaml']
  static override flags = {
    inventory: inventoryFlag(),
    'dry-run': dryRunFlag(),
  }

  protected override get writesLogFile(): boolean {
    return true
  }

  async run(): Promise<DownResult> {
    const {flags} = await this.parse(Down)
    const {cluster, inventory} = await resolveCluster(flags.inventory)
    const interrupts = handleInterrupts({logger: this.logger})
    try {
      const json = this.jsonEnabled()
      const progress = createProgress({
        mode: progressMode({
          json,
          logFormat: json ? 'json' : 'pretty',
          stderrIsTTY: process.stderr.isTTY === true,
          term: process.env.TERM,
        }),
        logger: this.logger,
      })
      const ctx: ControlPlaneContext = {
        ...createPlanContext({logger: this.logger, dryRun: flags['dry-run'], signal: interrupts.signal, progress}),
        cluster,
        inventory,
        paths: clusterPaths(cluster),
        detach: false,
      }
      const result = await runPlan(DOWN_PHASES, ctx)
      progress.close()
      if (result.status !== 'done') {
        const details = [
          ...(result.failure?.details ?? []),
          ...result.cleanupFailures.map((f) => `${f.phase}: ${f.message}`),
        ]
        throw new HybridError(
          result.failure?.message ?? 'interrupted; run `hybrid down` again to finish',
          result.exitCode === 0 ? 1 : result.exitCode,
          details,
        )
      }
      const changes = result.changes.map((c) => c.sentence)
      if (flags['dry-run']) {
        if (!json) process.stdout.write(renderChanges(result.changes, true))
        return {cluster, outcome: 'dry-run', changes}
      }
      const wasUp = result.phases.some((p) => p.title === stopControlPlane.title && p.status === 'done')
      this.log(
        wasUp
          ? `cluster ${cluster} is down; its workarounds are undone`
          : `cluster ${cluster} is not up; nothing to do`,
      )
      return {cluster, outcome: wasUp ? 'down' : 'not-up', changes}
    } finally {
      interrupts.dispose()
    }
  }
}
