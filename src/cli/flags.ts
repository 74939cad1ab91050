import {Flags} from '@oclif/core'

/** The flags several commands share, defined once so their names and help read the same everywhere. */

/** `--inventory FILE`; commands that act on a cluster fall back to the one `up` last brought up. */
export const inventoryFlag = (description = 'the inventory file (default: the cluster `up` last brought up)') =>
  Flags.string({char: 'i', description})

/** `--wait SECONDS`: how long a mutating run waits for another run on the same cluster (0: refuse at once). */
export const waitFlag = () =>
  Flags.integer({
    description:
      'wait up to this many seconds for another hybrid changing the same cluster to finish (default: refuse at once)',
    default: 0,
    min: 0,
  })

/** `--dry-run`: the plan's wet() records each change instead of making it. */
export const dryRunFlag = () => Flags.boolean({description: 'print what would change, change nothing', default: false})
