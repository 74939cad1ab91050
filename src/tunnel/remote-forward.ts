import type {Client, ClientChannel} from 'ssh2'

import {addressFact, parseProcNetTcp, portFree} from '../remote/facts.js'
import {withDeadline} from '../util/abort.js'

/**
 * The remote forward of the API tunnel on one connection: ask sshd to listen on `address:port` on the
 * worker, and make sure it listens there. sshd answers a forward it cannot bind with a bare "failure",
 * and one its GatewayPorts does not allow by quietly binding loopback instead; both are told apart here
 * from the worker's own tables (read over the same connection), so the sentence names the fix.
 */
export async function openRemoteForward(
  client: Client,
  worker: string,
  address: string,
  port: number,
  timeoutMs: number,
): Promise<void> {
  const where = `${address}:${port}`
  // A sshd that accepted the login may still never answer (hung, stopped): every request has a deadline,
  // so the tunnel reports it and dials again instead of waiting for ever.
  const late = (what: string) =>
    new Error(`${worker}: sshd did not ${what} within ${Math.round(timeoutMs / 1000)}s; is its login hanging?`)
  const refused = await withDeadline(
    new Promise<boolean>((resolve) => client.forwardIn(address, port, (error) => resolve(!!error))),
    timeoutMs,
    () => late(`answer the request to listen on ${where}`),
  )
  const exec = (command: string) =>
    execText(client, command, timeoutMs, () => late('run a command to check the forward'))
  if (refused) {
    const tables = await exec('ip -o -4 addr show; echo @@; cat /proc/net/tcp /proc/net/tcp6')
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
  const listeners = parseProcNetTcp(await exec('cat /proc/net/tcp /proc/net/tcp6'))
  if (portFree(listeners, port, address))
    throw new Error(
      `${worker}: sshd bound the API tunnel to its loopback, not to ${where}, as its GatewayPorts is not clientspecified; set "GatewayPorts clientspecified" in its sshd_config and reload sshd, or set network.manageSshd: true`,
    )
}

/** The kernel's tables read here are a few KiB; a worker that prints more is not answering the question. */
const TABLES_LIMIT_BYTES = 4 * 1024 * 1024

/** Run a fixed `command` on the connection and return its output, within `timeoutMs` and the size above. */
function execText(client: Client, command: string, timeoutMs: number, late: () => Error): Promise<string> {
  let channel: ClientChannel | undefined
  const text = new Promise<string>((resolve, reject) =>
    client.exec(command, (error, stream) => {
      if (error) return reject(error)
      channel = stream
      const out: Buffer[] = []
      let size = 0
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > TABLES_LIMIT_BYTES) {
          reject(new Error(`the worker printed more than ${TABLES_LIMIT_BYTES} bytes for: ${command}`))
          stream.close()
        } else out.push(chunk)
      })
      stream.stderr.resume()
      stream.on('close', () => resolve(Buffer.concat(out).toString()))
    }),
  )
  return withDeadline(text, timeoutMs, late).finally(() => channel?.close())
}
