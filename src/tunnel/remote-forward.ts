import type {Client} from 'ssh2'

import {addressFact, parseProcNetTcp, portFree} from '../remote/facts.js'

/**
 * The remote forward of the API tunnel on one connection: ask sshd to listen on `address:port` on the
 * worker, and make sure it listens there. sshd answers a forward it cannot bind with a bare "failure",
 * and one its GatewayPorts does not allow by quietly binding loopback instead; both are told apart here
 * from the worker's own tables (read over the same connection), so the sentence names the fix.
 */
export async function openRemoteForward(client: Client, worker: string, address: string, port: number): Promise<void> {
  const refused = await new Promise<boolean>((resolve) => client.forwardIn(address, port, (error) => resolve(!!error)))
  const where = `${address}:${port}`
  if (refused) {
    const tables = await execText(client, 'ip -o -4 addr show; echo @@; cat /proc/net/tcp /proc/net/tcp6')
    const [addresses, tcp = ''] = tables.split('\n@@\n')
    if (addressFact(address, addresses).interfaces.length === 0)
      throw new Error(
        `${worker}: sshd cannot listen on ${where} for the API tunnel, as ${address} is not on the worker; hybrid puts it there when it joins the worker (on hybrid0 or lo)`,
      )
    if (!portFree(parseProcNetTcp(tcp), port, address))
      throw new Error(
        `${worker}: ${where} is already in use on the worker, so the API tunnel cannot listen there; stop what listens there or change controlPlane.apiPort`,
      )
    throw new Error(
      `${worker}: sshd refused to listen on ${where} for the API tunnel (its AllowTcpForwarding forbids remote forwards); set "AllowTcpForwarding yes" in its sshd_config and reload sshd, or set network.manageSshd: true`,
    )
  }
  const listeners = parseProcNetTcp(await execText(client, 'cat /proc/net/tcp /proc/net/tcp6'))
  if (portFree(listeners, port, address))
    throw new Error(
      `${worker}: sshd bound the API tunnel to its loopback, not to ${where}, as its GatewayPorts is not clientspecified; set "GatewayPorts clientspecified" in its sshd_config and reload sshd, or set network.manageSshd: true`,
    )
}

/** Run a fixed `command` on the connection and return its output. */
function execText(client: Client, command: string): Promise<string> {
  return new Promise((resolve, reject) =>
    client.exec(command, (error, stream) => {
      if (error) return reject(error)
      const out: Buffer[] = []
      stream.on('data', (chunk: Buffer) => out.push(chunk))
      stream.stderr.resume()
      stream.on('close', () => resolve(Buffer.concat(out).toString()))
    }),
  )
}
