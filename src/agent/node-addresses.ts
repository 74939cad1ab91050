import {isIP} from 'node:net'

import type {WorkerSpec} from '../inventory/model.js'
import type {HostFacts} from '../remote/facts.js'

/**
 * The Node's addresses a worker's agent is given. The kubelet refuses a node IP that is on none of the
 * host's interfaces ("node IP: … not found in the host's network interfaces"), and the address hybrid
 * dials may be another machine's (NAT, a forwarded port, a public address), so the inventory address is
 * node-ip only where the worker's facts show it on an interface. Elsewhere k3s picks node-ip (the address
 * of the default route) and an IP inventory address becomes node-external-ip; a DNS name is no Node
 * address at all. `workers[].internalAddress` and `externalAddress` override either choice.
 */
export interface NodeAddresses {
  /** k3s node-ip (the Node's InternalIP); absent: k3s chooses. */
  readonly nodeIp?: string
  /** k3s node-external-ip (the Node's ExternalIP). */
  readonly nodeExternalIp?: string
  /** Why an address the inventory gives is not used, for the log (undefined when nothing is left out). */
  readonly note?: string
}

type Worker = Pick<WorkerSpec, 'name' | 'address' | 'internalAddress' | 'externalAddress'>

/** The Node's addresses for `worker`, from its interface addresses (null: they could not be listed). */
export function nodeAddresses(worker: Worker, facts: Pick<HostFacts, 'interfaceAddresses'>): NodeAddresses {
  const local = facts.interfaceAddresses?.map((a) => a.address) ?? null
  const address = worker.address
  const onHost = local?.includes(address) ?? false
  const nodeIp = worker.internalAddress ?? (isIP(address) && onHost ? address : undefined)
  const fallback = isIP(address) && local !== null && !onHost && address !== nodeIp ? address : undefined
  const nodeExternalIp = worker.externalAddress ?? fallback
  return {
    ...(nodeIp ? {nodeIp} : {}),
    ...(nodeExternalIp ? {nodeExternalIp} : {}),
    ...noteFor(worker, local, onHost),
  }
}

function noteFor(worker: Worker, local: readonly string[] | null, onHost: boolean): {note?: string} {
  const {name, address} = worker
  if (worker.internalAddress && worker.externalAddress) return {}
  if (!isIP(address)) {
    if (worker.externalAddress) return {}
    return {
      note: `${name}: its address ${address} is a DNS name, which is no valid node-external-ip, so hybrid sets neither node-ip nor node-external-ip from it (k3s picks the Node's address; set workers[].internalAddress or externalAddress to choose)`,
    }
  }
  if (local === null && !worker.internalAddress)
    return {
      note: `${name}: its interface addresses could not be listed (no ip command there), so hybrid leaves node-ip to k3s rather than risk one the kubelet refuses`,
    }
  if (local !== null && !onHost && !worker.internalAddress)
    return {
      note: `${name}: ${address} is not an address of its interfaces (NAT or a forwarded port), so k3s picks node-ip and ${worker.externalAddress ? `the ExternalIP is ${worker.externalAddress}` : `${address} becomes node-external-ip`}`,
    }
  return {}
}
