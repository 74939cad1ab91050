import {Args} from '@oclif/core'

import {HybridCommand} from '../../cli/hybrid-command.js'
import {InventoryError, type Problem} from '../../inventory/errors.js'
import {checkInventoryFile} from '../../inventory/load.js'
import type {Inventory} from '../../inventory/model.js'

/** What `--json` prints: the problems (with positions) or the resolved cluster. */
export interface ValidateResult {
  readonly valid: boolean
  readonly file: string
  readonly problems: readonly Problem[]
  readonly cluster?: Inventory
}

export default class InventoryValidate extends HybridCommand {
  static override summary = 'Check an inventory file'
  static override description = `Reports every problem at once as FILE:LINE:COL field.path: sentence and exits 2 when there is one.
Checks the file itself; the keys, binaries and hosts it names are checked later by preflight and up.`
  static override examples = [
    '<%= config.bin %> inventory validate lab.yaml',
    '<%= config.bin %> inventory validate lab.yaml --json',
  ]
  static override args = {
    file: Args.string({description: 'the inventory file', required: true}),
  }

  async run(): Promise<ValidateResult> {
    const {args} = await this.parse(InventoryValidate)
    const result = await checkInventoryFile(args.file)
    if (result.ok) {
      const {inventory} = result
      const workers = inventory.workers.length
      this.log(`${args.file} is valid: cluster ${inventory.name}, ${workers} worker${workers === 1 ? '' : 's'}`)
      return {valid: true, file: args.file, problems: [], cluster: inventory}
    }
    // --json: the problems are the document (exit 2 still); otherwise the usual error output.
    if (!this.jsonEnabled()) throw new InventoryError(args.file, result.problems)
    process.exitCode = 2
    return {valid: false, file: args.file, problems: result.problems}
  }
}
