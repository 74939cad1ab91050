import {randomBytes} from 'node:crypto'

import {registerSecret} from '../log/redact.js'
import type {Host} from '../remote/host.js'
import {WORKER_PATHS} from './worker-paths.js'

/**
 * The worker's node password, owned by hybrid. k3s's server keeps the hash of the password an agent first
 * sent under a node name (kube-system/<node>.node-password.k3s) and refuses that name with another password
 * (403 "Node password rejected"), so that one worker cannot take over another's Node. An agent makes its
 * password itself when /etc/rancher/node/password is missing, so a host replaced (or reinstalled) under a
 * name the cluster knows could never join again. hybrid therefore chooses the password, keeps it in the
 * worker's record (0600, in the state directory beside the token) and writes it before the agent starts:
 * the replaced host sends what the secret holds. Each worker gets a password of its own and only its own
 * host sees it, so a worker still cannot impersonate another; deleting the Node and its secret instead
 * would let any host that claims the name take it over. A record without a password (a worker joined
 * before hybrid kept them) takes over the one its agent made, which the secret already holds.
 */
export async function workerNodePassword(host: Host, recorded: string | undefined): Promise<string> {
  const password = recorded ?? (await existingPassword(host)) ?? randomBytes(16).toString('hex')
  registerSecret(password)
  return password
}

/** What the agent made, when a valid one is there (k3s reads the file trimmed). */
async function existingPassword(host: Host): Promise<string | undefined> {
  const text = (await host.readFile(WORKER_PATHS.nodePassword, {sudo: true}))?.toString('utf8').trim()
  return text && /^\S+$/.test(text) ? text : undefined
}
