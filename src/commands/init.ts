import {basename, extname} from 'node:path'

import {Args, Flags} from '@oclif/core'

import {HybridCommand} from '../cli/hybrid-command.js'
import {UsageError} from '../errors.js'
import {FORMATS} from '../inventory/formats.js'
import {checkInventory} from '../inventory/load.js'
import {installedSchemaPath, starterInventory} from '../inventory/starter.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {pathExists} from '../util/path-exists.js'

export interface InitResult {
  readonly file: string
  readonly name: string
}

/** The file's base name when it makes a cluster name ("lab.yaml" → lab), else "hybrid". */
function nameFromFile(file: string): string {
  const stem = basename(file, extname(file))
  return FORMATS['dns1123-label'].check(stem) === undefined ? stem : 'hybrid'
}

export default class Init extends HybridCommand {
  static override summary = 'Write a commented starter inventory'
  static override description =
    'The starter validates as written (a control-plane-only cluster); add your workers under spec.workers.'
  static override examples = ['<%= config.bin %> init', '<%= config.bin %> init lab.yaml --name lab']
  static override args = {
    file: Args.string({description: 'where to write it', default: 'hybrid.yaml'}),
  }

  static override flags = {
    force: Flags.boolean({description: 'overwrite the file if it exists', default: false}),
    name: Flags.string({
      description:
        'the cluster name (default: the file name without extension, if it is a DNS-1123 label, else "hybrid")',
    }),
  }

  async run(): Promise<InitResult> {
    const {args, flags} = await this.parse(Init)
    const file = args.file
    const name = flags.name ?? nameFromFile(file)
    const reason = FORMATS['dns1123-label'].check(name)
    if (reason !== undefined) throw new UsageError(`--name ${JSON.stringify(name)} is not a DNS-1123 label: ${reason}`)
    if (!flags.force && (await pathExists(file)))
      throw new UsageError(`${file} already exists; use --force to overwrite it`)
    const text = starterInventory({name, schema: installedSchemaPath()})
    // The starter must always validate; a failure here is a defect in hybrid, not in the user's input.
    const check = checkInventory(text, file)
    if (!check.ok)
      throw new Error(`the starter inventory does not validate: ${check.problems.map((p) => p.message).join('; ')}`)
    await writeFileAtomic(file, text)
    this.log(
      `wrote ${file}: cluster ${name}, no workers yet (add them under spec.workers, then run hybrid inventory validate ${file})`,
    )
    return {file, name}
  }
}
