import {RemoteError} from '../remote/errors.js'
import {addressFact} from '../remote/facts.js'
import type {Host} from '../remote/host.js'

/**
 * The advertised address on a worker (docs/architecture.md, "Tunnels"): the API tunnel listens on it,
 * so the worker must hold it as its own. It goes on hybrid's dummy interface `hybrid0` where the kernel
 * has the dummy driver, else on the loopback device. The record says exactly what was done, so that
 * removing works from the record alone (after a crash) and can be repeated.
 */

/** hybrid's own interface; an address on it, or on `lo`, counts as hybrid's (see facts.advertiseAddress). */
export const HYBRID_DEVICE = 'hybrid0'

export interface AddressRecord {
  readonly address: string
  /** Where the address lives: hybrid0, lo (the fallback), or an interface the host already had it on. */
  readonly device: string
  /** True when the address is hybrid's to remove (on hybrid0 or lo); false when the host had it elsewhere. */
  readonly created: boolean
}

export interface AddressResult extends AddressRecord {
  /** False when the address was already in place ("already"). */
  readonly changed: boolean
}

export interface AddressOptions {
  /** Put the address on `lo` even where hybrid0 could be made (tests; kernels whose dummy driver misbehaves). */
  readonly loopbackOnly?: boolean
}

/** Put `address/32` on the worker (as root), unless it already holds it. */
export async function ensureAdvertisedAddress(
  host: Host,
  address: string,
  options: AddressOptions = {},
): Promise<AddressResult> {
  const found = await interfacesWith(host, address)
  if (found.length > 0) {
    const device = found.includes(HYBRID_DEVICE) ? HYBRID_DEVICE : found.includes('lo') ? 'lo' : found[0]
    return {address, device, created: device === HYBRID_DEVICE || device === 'lo', changed: false}
  }
  const device = options.loopbackOnly ? 'lo' : await hybridDevice(host)
  await ip(host, ['addr', 'add', `${address}/32`, 'dev', device], `put ${address} on ${device}`)
  return {address, device, created: true, changed: true}
}

/**
 * Undo what `record` says was done; nothing when it is already undone. A record made before the change
 * (device hybrid0, the intent) may meet any part of it: hybrid0 with or without the address, or the
 * address on `lo` (the fallback), or nothing; each is undone, and what is absent is left alone.
 */
export async function removeAdvertisedAddress(host: Host, record: AddressRecord): Promise<{changed: boolean}> {
  if (!record.created) return {changed: false}
  let changed = false
  if (record.device === HYBRID_DEVICE && (await linkExists(host, HYBRID_DEVICE))) {
    await ip(host, ['link', 'del', HYBRID_DEVICE], `remove ${HYBRID_DEVICE}`)
    changed = true
  }
  const device = record.device === HYBRID_DEVICE ? 'lo' : record.device
  if ((await interfacesWith(host, record.address)).includes(device)) {
    await ip(host, ['addr', 'del', `${record.address}/32`, 'dev', device], `remove ${record.address}`)
    changed = true
  }
  return {changed}
}

/** hybrid0, made (and brought up) when missing; `lo` when the kernel cannot make a dummy interface. */
async function hybridDevice(host: Host): Promise<string> {
  if (await linkExists(host, HYBRID_DEVICE)) return HYBRID_DEVICE
  const made = await host.run(['ip', 'link', 'add', HYBRID_DEVICE, 'type', 'dummy'], {sudo: true})
  if (made.exitCode !== 0) return 'lo'
  await ip(host, ['link', 'set', HYBRID_DEVICE, 'up'], `bring ${HYBRID_DEVICE} up`)
  return HYBRID_DEVICE
}

async function interfacesWith(host: Host, address: string): Promise<readonly string[]> {
  const shown = await host.check(['ip', '-o', '-4', 'addr', 'show'])
  return addressFact(address, shown.stdout).interfaces
}

async function linkExists(host: Host, name: string): Promise<boolean> {
  return (await host.run(['ip', 'link', 'show', 'dev', name])).exitCode === 0
}

async function ip(host: Host, args: readonly string[], what: string): Promise<void> {
  const result = await host.run(['ip', ...args], {sudo: true})
  if (result.exitCode !== 0)
    throw new RemoteError(
      'REMOTE_COMMAND_FAILED',
      `${host.name}: could not ${what} (ip ${args.join(' ')}: ${result.stderr.trim() || `exit ${result.exitCode}`})`,
      host.name,
    )
}
