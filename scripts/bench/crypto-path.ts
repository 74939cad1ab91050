import {execFile} from 'node:child_process'
import {createRequire} from 'node:module'
import {promisify} from 'node:util'

import ssh2 from 'ssh2'

import {SshConnections} from '../../src/remote/connections.js'
import type {WorkerSpec} from '../../src/inventory/model.js'

const require = createRequire(import.meta.url)

/** Whether ssh2 loaded its native crypto binding (built by its install script) or runs its JS fallback. */
export function ssh2CryptoPath(): string {
  const crypto = require('ssh2/lib/protocol/crypto.js') as {bindingAvailable?: boolean}
  return crypto.bindingAvailable
    ? "ssh2's native binding (sshcrypto.node)"
    : "ssh2's JavaScript fallback (no sshcrypto.node)"
}

/** What hybrid's own connect (its algorithms, via SshConnections) negotiates with this worker. */
export async function hybridNegotiated(worker: WorkerSpec): Promise<string> {
  let negotiated: {kex?: string; cs?: {cipher?: string; mac?: string}} | undefined
  type Connect = (this: ssh2.Client, config: unknown) => unknown
  const proto = ssh2.Client.prototype as unknown as {connect: Connect}
  const connect: Connect = proto.connect
  proto.connect = function (this: ssh2.Client, config: unknown) {
    this.once('handshake', (n: typeof negotiated) => (negotiated ??= n))
    return connect.call(this, config)
  }
  const connections = new SshConnections({})
  try {
    await connections.host(worker)
  } finally {
    proto.connect = connect
    await connections.closeAll()
  }
  const mac = negotiated?.cs?.mac && negotiated.cs.mac !== '' ? ` + ${negotiated.cs.mac}` : ''
  return `${negotiated?.cs?.cipher ?? '?'}${mac}, kex ${negotiated?.kex ?? '?'}`
}

/** What OpenSSH's client negotiates with the same host (from `ssh -v`). */
export async function opensshNegotiated(options: string[], destination: string): Promise<string> {
  const {stderr} = await promisify(execFile)('ssh', ['-v', ...options, destination, 'true'])
  const cipher = /kex: client->server cipher: (\S+) MAC: (\S+)/.exec(stderr)
  const kex = /kex: algorithm: (\S+)/.exec(stderr)
  const mac = cipher && cipher[2] !== '<implicit>' ? ` + ${cipher[2]}` : ''
  return `${cipher?.[1] ?? '?'}${mac}, kex ${kex?.[1] ?? '?'}`
}
