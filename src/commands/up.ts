import {resolve} from 'node:path'

import {Flags} from '@oclif/core'

import {UpAction, type UpResult} from '../actions/up.js'
import {superviseDetached} from '../actions/supervise.js'
import {dryRunFlag, inventoryFlag} from '../cli/flags.js'
import {HybridCommand} from '../cli/hybrid-command.js'
import {selfCommand} from '../cli/self-command.js'
import {UsageError} from '../errors.js'
import {loadInventory} from '../inventory/load.js'
import {createProgress, renderChanges} from '../ui/index.js'

export type {UpResult}

export default class Up extends HybridCommand {
  static override summary = 'Bring the cluster up: the k3s control plane in this sandbox, with its workarounds'
  static override description =
    'Stays in the foreground as the supervisor of k3s (like `k3s server`) until SIGINT or SIGTERM, then ' +
    'stops k3s and undoes the workarounds; with --detach it returns once the cluster is ready and a ' +
    'background supervisor keeps it running (`hybrid down` stops it).'
  static override examples = [
    '<%= config.bin %> up --inventory lab.yaml',
    '<%= config.bin %> up --inventory lab.yaml --detach',
    '<%= config.bin %> up --inventory lab.yaml --dry-run',
  ]
  static override flags = {
    inventory: inventoryFlag('the inventory file (required)'),
    'dry-run': dryRunFlag(),
    detach: Flags.boolean({
      description: 'return once ready; a background supervisor keeps the cluster running',
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
    const inventory = await loadInventory(resolve(flags.inventory))
    if (inventory.workers.length > 0) {
      throw new UsageError(
        `${inventory.file}: spec.workers: this version of hybrid brings up the control plane only; joining workers is not implemented yet (use workers: [])`,
      )
    }
    let action: UpAction | undefined
    const env = this.actionEnv({onForceExit: () => action?.killK3s()})
    try {
      if (flags.supervise) {
        const progress = createProgress({mode: 'plain', logger: this.logger})
        const outcome = await superviseDetached({...env, progress}, inventory)
        return {cluster: inventory.name, outcome}
      }
      action = new UpAction(env)
      const dryRun = flags['dry-run']
      const supervision = flags.detach ? 'detach' : 'foreground'
      const onReady = (ready: UpResult) => {
        if (!this.jsonEnabled()) this.log(howToUse(ready, flags.detach))
      }
      const result = await action.run({inventory, dryRun, supervision, onReady})
      env.progress.close()
      const {changes, ...shown} = result
      if (this.jsonEnabled()) return shown
      if (result.outcome === 'dry-run') process.stdout.write(renderChanges(changes ?? [], true))
      if (result.outcome === 'already-up') this.log(`cluster ${result.cluster} is already up; nothing to change`)
      return shown
    } finally {
      env.progress.close()
      env.interrupts.dispose()
    }
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
  return lines.join('\n')
}
