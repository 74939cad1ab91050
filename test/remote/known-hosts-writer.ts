/**
 * A process of its own for the known_hosts race test: at the instant given, verify every host key given
 * under accept-new through one known_hosts file, all at once, with hybrid's own code (as the host-key
 * check of every connection does). Prints one status per host, as JSON.
 *   node known-hosts-writer.js KNOWN_HOSTS START_MS NAME=ADDRESS=TYPE:BASE64 …
 */
import {verifyHostKey} from '../../src/remote/host-key-policy.js'

const [knownHosts, startAt, ...hosts] = process.argv.slice(2)
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(startAt) - Date.now())))
const statuses = await Promise.all(
  hosts.map(async (spec) => {
    const [name, address, key] = spec.split('=')
    const blob = Buffer.from(key.split(':')[1], 'base64')
    const check = {host: name, address, port: 22, policy: 'accept-new' as const, knownHosts, pinned: null}
    return [name, await verifyHostKey(check, blob).catch((error: Error) => error.message)]
  }),
)
process.stdout.write(JSON.stringify(Object.fromEntries(statuses)))
