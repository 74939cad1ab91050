/**
 * Node names hybrid gives itself. The sandbox's own Node (the k3s server's embedded agent) is named after
 * the cluster, so no worker may take that name: a worker's Node is found by its name (docs/architecture.md,
 * "Workers").
 */
export function sandboxNodeName(cluster: string): string {
  return `${cluster}-server`
}
