import type {ResolvedBastion, WorkerSpec} from '../inventory/model.js'

/**
 * OpenSSH command lines that reach a worker the way hybrid does (user, port, the jump hosts in order), for
 * people to run from their own machines: `kubeconfig --via` prints the local forward to the API that way.
 */

/** The worker's address as dialled: the OpenSSH config's HostName for it, else the inventory's address. */
export function dialAddress(worker: Pick<WorkerSpec, 'address' | 'ssh'>): string {
  return worker.ssh.hostName ?? worker.address
}

/** The jump hosts from the first one dialled to the last, nearest the worker. */
export function jumpChain(bastion: ResolvedBastion | null): ResolvedBastion[] {
  const chain: ResolvedBastion[] = []
  for (let hop: ResolvedBastion | undefined = bastion ?? undefined; hop; hop = hop.via) chain.unshift(hop)
  return chain
}

/** An address as `ssh -L` and `-J` take it: IPv6 in brackets. */
function bracketed(address: string): string {
  return address.includes(':') ? `[${address}]` : address
}

/**
 * `ssh -N -L LOCAL:TARGET:PORT [-p P] [-J jump,…] user@worker`: a connection that forwards 127.0.0.1:LOCAL on
 * the machine running it to TARGET:PORT as the worker sees it, and runs nothing else. Key files are left
 * out: the machine running it has its own.
 */
export function sshLocalForward(
  worker: Pick<WorkerSpec, 'address' | 'ssh'>,
  localPort: number,
  target: {readonly address: string; readonly port: number},
): string[] {
  const argv = ['ssh', '-N', '-L', `${localPort}:${bracketed(target.address)}:${target.port}`]
  if (worker.ssh.port !== 22) argv.push('-p', String(worker.ssh.port))
  const jumps = jumpChain(worker.ssh.bastion)
  if (jumps.length > 0)
    argv.push('-J', jumps.map((hop) => `${hop.user}@${bracketed(hop.address)}:${hop.port}`).join(','))
  argv.push(`${worker.ssh.user}@${dialAddress(worker)}`)
  return argv
}
