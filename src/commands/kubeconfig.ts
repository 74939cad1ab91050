import {Flags} from '@oclif/core'

import {inventoryFlag} from '../cli/flags.js'
import {kubeconfigVia, type KubeconfigViaResult} from '../actions/kubeconfig-via.js'
import {HybridCommand} from '../cli/hybrid-command.js'
import {HybridError, UsageError} from '../errors.js'
import {clusterKubeconfig} from '../kube/cluster-kubeconfig.js'
import {mergeIntoFile, mergeTarget, renameKubeconfig} from '../kube/kubeconfig.js'
import {commandLine} from '../remote/quote.js'
import {readState} from '../state/cluster-state.js'
import {resolveCluster} from '../state/current.js'

export interface KubeconfigResult {
  readonly cluster: string
  readonly context: string
  /** The cluster's own kubeconfig file. */
  readonly file: string
  /** --merge: the file it was merged into. */
  readonly mergedInto?: string
}

export default class Kubeconfig extends HybridCommand {
  static override summary = "Print the cluster's kubeconfig, or merge it into ~/.kube/config"
  static override description =
    "The kubeconfig is a secret: it goes to stdout only (or, with --merge, into the kubeconfig file, 0600), never to a log. With --json, the document names the files instead of holding the secret. Where the cluster runs, its server is https://127.0.0.1:PORT; on the host of the sandbox it runs in (another pid and network namespace that shares its files) it is the sandbox's own address, which is in the API's certificate."
  static override examples = [
    '<%= config.bin %> kubeconfig > lab.kubeconfig',
    '<%= config.bin %> kubeconfig --merge',
    '<%= config.bin %> kubeconfig --merge --context lab-sandbox',
    '<%= config.bin %> kubeconfig --via w1 --local-port 16443 --output lab.kubeconfig',
  ]
  static override flags = {
    inventory: inventoryFlag(),
    merge: Flags.boolean({
      description: 'merge into the first file of KUBECONFIG, else ~/.kube/config, and make it the current context',
      default: false,
    }),
    context: Flags.string({
      description: 'name of the context (and of its cluster and user entries); default: the cluster name',
    }),
    via: Flags.string({
      description:
        "write a kubeconfig for a machine outside the sandbox that can SSH to this worker, and print the `ssh -L` command that forwards its local port to the API on the worker's advertised address",
      helpValue: 'WORKER',
      exclusive: ['merge'],
    }),
    'local-port': Flags.integer({
      description: 'with --via: the port on the laptop the kubeconfig points at (default: the API port)',
      min: 1,
      max: 65535,
      dependsOn: ['via'],
    }),
    output: Flags.string({
      char: 'o',
      description: 'with --via: where to write the kubeconfig (0600; default: CLUSTER-via-WORKER.kubeconfig here)',
      dependsOn: ['via'],
    }),
  }

  async run(): Promise<KubeconfigResult | KubeconfigViaResult> {
    const {flags} = await this.parse(Kubeconfig)
    const {cluster} = await resolveCluster(flags.inventory)
    const context = flags.context ?? cluster
    if (!/^[A-Za-z0-9][A-Za-z0-9._@:/-]*$/.test(context)) {
      throw new UsageError(
        `--context ${JSON.stringify(context)} is not a usable context name (letters, digits and . _ @ : / -, starting with a letter or digit)`,
      )
    }
    if (flags.via !== undefined) {
      const result = await kubeconfigVia({
        cluster,
        context,
        worker: flags.via,
        localPort: flags['local-port'],
        output: flags.output,
      })
      if (!this.jsonEnabled()) {
        process.stderr.write(
          `wrote ${result.file} (0600; server ${result.server}, certificate checked for ${result.tlsServerName}); copy it to the machine that can SSH to ${result.worker}, and there run:\n`,
        )
        process.stdout.write(`${commandLine(result.ssh)}\n`)
      }
      return result
    }
    const found = await clusterKubeconfig(cluster, await readState(cluster))
    if (!found) {
      throw new HybridError(
        'CLUSTER_NOT_UP',
        `cluster ${cluster} is not up (it has no kubeconfig); \`hybrid up --inventory FILE\` brings it up`,
      )
    }
    const {file} = found
    let text = found.text
    if (context !== cluster) text = renameKubeconfig(text, context)
    if (flags.merge) {
      const target = mergeTarget()
      await mergeIntoFile(target, text)
      if (!this.jsonEnabled())
        process.stderr.write(`merged context ${context} into ${target}; it is now the current context\n`)
      return {cluster, context, file, mergedInto: target}
    }
    if (!this.jsonEnabled()) process.stdout.write(text)
    return {cluster, context, file}
  }
}
