import {execFile} from 'node:child_process'
import {promisify} from 'node:util'

import {kubeConfigFromFile} from '../kube/client.js'
import {listNodes, type NodeSummary} from '../kube/nodes.js'
import type {PlanResult} from '../plan/index.js'

/** What `up` reports once the cluster is up: which k3s runs, how long each stage took, the Nodes. */
export interface UpSummary {
  readonly elapsedMs: number
  /** The binary the control plane runs, and the first line of its `--version` (k3s says which build it is). */
  readonly k3s: {readonly binary: string; readonly version: string} | null
  /** The phases that ran, with their time. */
  readonly stages: ReadonlyArray<{readonly title: string; readonly elapsedMs: number}>
  readonly nodes: readonly NodeSummary[]
}

const run = promisify(execFile)

/** Reads only: the binary's version, the plan's phases, and the Nodes through the cluster's kubeconfig. */
export async function upSummary(
  result: PlanResult,
  kubeconfig: string,
  binary: string | undefined,
): Promise<UpSummary> {
  const [version, nodes] = await Promise.all([
    binary
      ? run(binary, ['--version'], {timeout: 10_000}).then(
          (r) => r.stdout.split('\n')[0].trim(),
          () => '(its --version did not answer)',
        )
      : undefined,
    listNodes(kubeConfigFromFile(kubeconfig)).catch((): NodeSummary[] => []),
  ])
  return {
    elapsedMs: result.elapsedMs,
    k3s: binary && version ? {binary, version} : null,
    stages: result.phases.filter((p) => p.status === 'done').map((p) => ({title: p.title, elapsedMs: p.elapsedMs})),
    nodes,
  }
}
