import {open, readFile} from 'node:fs/promises'
import {constants} from 'node:fs'

import {KUBELET_TUNABLES} from '../../interceptor/index.js'

/**
 * The six /proc/sys tunables the kubelet checks at startup. For each it reads the value and, when it is
 * not what the kubelet wants, writes its own; a missing file or a refused write stops the kubelet.
 *
 * The probe changes nothing: it only tests writability where the kubelet would write. On a real kernel
 * opening for writing already applies the checks that matter (read-only /proc/sys, permissions), so it
 * opens and closes without writing. gVisor accepts the open and refuses the write itself (EIO), so there
 * the probe writes back the value it just read, which leaves it as it was; and no write inside gVisor
 * can reach the host's kernel.
 */
export interface TunableFacts {
  /** e.g. vm/overcommit_memory */
  readonly name: string
  readonly present: boolean
  readonly value?: string
  /** What the kubelet wants. */
  readonly wanted: string
  /** The kubelet would write it (the value differs). */
  readonly kubeletWrites: boolean
  /** Checked only when the kubelet would write. */
  readonly writable?: boolean
  readonly error?: string
}

export interface ProcSysFacts {
  readonly tunables: readonly TunableFacts[]
  /** A tunable is missing, or the kubelet's write to it would fail. */
  readonly blocked: boolean
  readonly evidence: string
}

export async function probeProcSys(inGvisor: boolean): Promise<ProcSysFacts> {
  const tunables: TunableFacts[] = []
  for (const {path, value: wanted} of KUBELET_TUNABLES) tunables.push(await probeTunable(path, wanted, inGvisor))
  const missing = tunables.filter((t) => !t.present)
  const refused = tunables.filter((t) => t.present && t.kubeletWrites && t.writable === false)
  const parts: string[] = []
  if (missing.length > 0) parts.push(`missing: ${missing.map((t) => t.name).join(', ')}`)
  for (const t of refused) parts.push(`${t.name} is ${t.value}, the kubelet writes ${t.wanted}: refused (${t.error})`)
  if (parts.length === 0) {
    const writes = tunables.filter((t) => t.kubeletWrites).map((t) => t.name)
    parts.push(
      `all six present${writes.length > 0 ? `; writable where the kubelet writes (${writes.join(', ')})` : " with the kubelet's values"}`,
    )
  }
  return {tunables, blocked: missing.length + refused.length > 0, evidence: parts.join('; ')}
}

async function probeTunable(path: string, wanted: string, inGvisor: boolean): Promise<TunableFacts> {
  const name = path.slice('/proc/sys/'.length)
  let raw: string
  try {
    raw = await readFile(path, 'utf8')
  } catch (error) {
    return {
      name,
      present: false,
      wanted,
      kubeletWrites: true,
      error: (error as NodeJS.ErrnoException).code ?? String(error),
    }
  }
  const value = raw.trim()
  if (value === wanted) return {name, present: true, value, wanted, kubeletWrites: false}
  try {
    const handle = await open(path, constants.O_WRONLY)
    try {
      if (inGvisor) await handle.write(`${value}\n`)
    } finally {
      await handle.close()
    }
    return {name, present: true, value, wanted, kubeletWrites: true, writable: true}
  } catch (error) {
    return {
      name,
      present: true,
      value,
      wanted,
      kubeletWrites: true,
      writable: false,
      error: (error as NodeJS.ErrnoException).code ?? String(error),
    }
  }
}
