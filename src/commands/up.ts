import {resolve} from 'node:path'

import {Flags} from '@oclif/core'

import {UpAction, type UpResult} from '../actions/up.js'
import {superviseDetached} from '../actions/supervise.js'
import {dryRunFlag, inventoryFlag, waitFlag} from '../cli/flags.js'
import {HybridCommand} from '../cli/hybrid-command.js'
import {selfCommand} from '../cli/self-command.js'
import {UsageError} from '../errors.js'
import {loadInventory} from '../inventory/load.js'
import {printable} from '../log/printable.js'
import {createProgress, renderChanges, renderHostTable, renderUpSummary} from '../ui/index.js'
import {throwIfHostsFailed} from '../actions/partly-done.js'

export type {UpResult}

export default class Up extends HybridCommand {
  static override summary =
    'Bring the cluster up: the k3s control plane in this sandbox, with its workarounds, and join every worker over SSH'
  static override description =
    'Stays in the foreground as the supervisor of k3s (like `k3s server`) until SIGINT or SIGTERM, then ' +
    'stops k3s and undoes the workarounds; with --detach it returns once the cluster is ready and a ' +
    'background supervisor keeps it running (`hybrid down` stops it). Workers are joined in parallel ' +
    '(spec.concurrency); a second `up` does only what is missing. Exit 3: the control plane is up and some ' +
    'workers joined, but others failed (each named with why); running `up` again resumes them. A changed ' +
    'spec.k3s.version upgrades a running cluster: the server, then the workers in batches of ' +
    'spec.upgrade.maxUnavailable (cordon, drain, new binary, restart, Ready, uncordon); a worker that fails ' +
    'stops the rollout (exit 3) and the next `up` goes on from there. A downgrade needs --allow-downgrade.'
  static override examples = [
    '<%= config.bin %> up --inventory lab.yaml',
    '<%= config.bin %> up --inventory lab.yaml --detach',
    '<%= config.bin %> up --inventory lab.yaml --dry-run',
    '<%= config.bin %> up --inventory lab.yaml --allow-downgrade',
  ]
  static override flags = {
    inventory: inventoryFlag('the inventory file (required)'),
    'dry-run': dryRunFlag(),
    wait: waitFlag(),
    detach: Flags.boolean({
      description: 'return once ready; a background supervisor keeps the cluster running',
      default: false,
    }),
    'restore-from': Flags.string({
      description:
        'restore this snapshot (WORKER:ID, as `hybrid snapshot list` shows it) into a sandbox without a cluster; without it, up restores the newest that verifies when its data dir is empty',
    }),
    'allow-downgrade': Flags.boolean({
      description: 'let a running cluster move to an older spec.k3s.version (refused otherwise)',
      default: false,
    }),
    supervise: Flags.boolean({
      hidden: true,
      description: 'internal: be the detached supervisor of a cluster `up --detach` prepared',
      default: false,
    }),
  }

  async run(): Promise<UpResult> {
    const {flags} = await this.parse(Up)
    if (flags.supervise && (flags.detach || flags['dry-run']))
      throw new UsageError('--supervise is internal and takes no --detach or --dry-run')
    if (!flags.inventory)
      throw new UsageError('up needs the inventory: hybrid up --inventory FILE (hybrid init writes a starter)')
    const restoreFrom = parseRestoreFrom(flags['restore-from'])
    const inventory = await loadInventory(resolve(flags.inventory))
    let action: UpAction | undefined
    const env = this.actionEnv({onForceExit: () => action?.killK3s(), waitSeconds: flags.wait})
    try {
      if (flags.supervise) {
        const progress = createProgress({mode: 'plain', logger: this.logger})
        const outcome = await superviseDetached({...env, progress}, inventory)
        return {cluster: inventory.name, outcome, workers: []}
      }
      action = new UpAction(env)
      const dryRun = flags['dry-run']
      const supervision = flags.detach ? 'detach' : 'foreground'
      const onReady = (ready: UpResult) => {
        if (this.jsonEnabled()) return
        if (ready.workers.length > 0) this.log(renderHostTable(ready.workers))
        if (ready.summary) this.log(renderUpSummary(ready.summary))
        this.log(howToUse(ready, flags.detach))
      }
      const allowDowngrade = flags['allow-downgrade']
      const result = await action.run({inventory, dryRun, supervision, onReady, restoreFrom, allowDowngrade})
      env.progress.close()
      const {changes: _changes, ...shown} = result
      if (!this.jsonEnabled()) this.render(result)
      // A foreground `up` said so when it was ready, and has supervised since: its stop is not a failure.
      if (result.outcome !== 'stopped') throwIfHostsFailed(result.workers, shown, '`hybrid up`')
      return shown
    } finally {
      env.progress.close()
      env.interrupts.dispose()
    }
  }

  /** The human rendering of a finished run (foreground and detached `up` printed theirs when ready). */
  private render(result: UpResult): void {
    if (result.outcome === 'dry-run') process.stdout.write(printable(renderChanges(result.changes ?? [], true)))
    if (result.outcome === 'upgraded') {
      if (result.workers.length > 0) this.log(renderHostTable(result.workers))
      if (result.summary) this.log(renderUpSummary(result.summary))
      if (!result.workers.some((w) => w.status === 'failed'))
        this.log(
          `cluster ${result.cluster} runs k3s ${result.upgrade?.to} (was ${result.upgrade?.from}), server and workers`,
        )
      return
    }
    if (result.outcome !== 'already-up') return
    if (result.workers.length > 0) this.log(renderHostTable(result.workers))
    if (result.summary) this.log(renderUpSummary(result.summary))
    if (result.workers.some((w) => w.status === 'failed')) return
    const how = result.workers.length > 0 ? 'its workers are as the inventory says' : 'nothing to change'
    this.log(`cluster ${result.cluster} is already up; ${how}`)
  }
}

function howToUse(ready: UpResult, detach: boolean): string {
  const hybrid = selfCommand()
  const lines = [
    `cluster ${ready.cluster} is up`,
    `  kubectl --kubeconfig ${ready.kubeconfig} get nodes`,
    `  ${hybrid} kubeconfig --merge    (adds context ${ready.cluster} to ~/.kube/config)`,
    detach
      ? `  ${hybrid} down                  (stops it and undoes the workarounds)`
      : `supervising k3s in the foreground; Ctrl-C or \`${hybrid} down\` stops it and undoes the workarounds`,
  ]
  if (ready.workers.length > 0)
    lines.push(`  ${hybrid} down --uninstall-workers   (and leaves nothing of hybrid on the workers)`)
  return lines.join('\n')
}

/** `WORKER:ID` of --restore-from. */
function parseRestoreFrom(value: string | undefined): {worker: string; id: string} | undefined {
  if (value === undefined) return undefined
  const match = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?):(\d{8}T\d{6}Z-[0-9a-f]{6})$/.exec(value)
  if (!match)
    throw new UsageError(
      `--restore-from takes WORKER:ID (e.g. w1:20260101T120000Z-0a1b2c), not ${JSON.stringify(value)}`,
    )
  return {worker: match[1], id: match[3]}
}
