/**
 * Node names and marks hybrid gives itself. The sandbox's own Node (the k3s server's embedded agent) is named after
 * the cluster, so no worker may take that name: a worker's Node is found by its name (docs/architecture.md,
 * "Workers").
 */
export function sandboxNodeName(cluster: string): string {
  return `${cluster}-server`
}

/**
 * The label every worker's agent sets on its Node (`node-label`), valued with the cluster's name: it tells
 * the worker's Node from another of the same name (src/kube/worker-node.ts).
 */
export const WORKER_LABEL = 'hybrid.dev/worker'
