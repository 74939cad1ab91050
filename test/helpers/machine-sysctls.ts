import {readFile, writeFile} from 'node:fs/promises'

import {KUBELET_TUNABLES} from '../../src/interceptor/index.js'

/**
 * The kubelet's six /proc/sys tunables on this machine. The k3s stand-in's embedded agent, run on the
 * host rather than in gVisor, writes them machine-wide as a real kubelet would (vm/overcommit_memory=1,
 * kernel/panic_on_oops=1, …). Tests must leave the machine as they found it: the root hooks
 * (test/helpers/root-hooks.ts, registered in .mocharc.json) record them before the run and put them back
 * after every test and at the end; a test that runs the stand-in on the host may also do so itself.
 */
export type MachineSysctls = Readonly<Record<string, string | null>>

/** Each tunable's value as the kernel prints it (trimmed), null where the file is missing. */
export async function readMachineSysctls(): Promise<MachineSysctls> {
  const values: Record<string, string | null> = {}
  for (const {path} of KUBELET_TUNABLES)
    values[path] = await readFile(path, 'utf8').then(
      (text) => text.trim(),
      () => null,
    )
  return values
}

/** Does the machine already have every value the kubelet wants (so the kubelet writes nothing)? */
export function hasKubeletValues(values: MachineSysctls): boolean {
  return KUBELET_TUNABLES.every(({path, value}) => values[path] === value)
}

/**
 * Write back every tunable that differs from `saved`; the paths it wrote. Only root can have changed
 * them (the stand-in as root), so as another user it writes nothing. A write the kernel refuses throws,
 * naming the tunable: a test run must not pass while it leaves the machine changed.
 */
export async function restoreMachineSysctls(saved: MachineSysctls): Promise<string[]> {
  if (process.getuid?.() !== 0) return []
  const now = await readMachineSysctls()
  const written: string[] = []
  for (const {path} of KUBELET_TUNABLES) {
    const value = saved[path]
    if (value === null || value === undefined || now[path] === value) continue
    try {
      await writeFile(path, `${value}\n`)
    } catch (error) {
      throw new Error(`cannot put ${path} back to ${value} (it is ${now[path]}): ${(error as Error).message}`)
    }
    written.push(path)
  }
  return written
}

/** Record the tunables now; the function returned puts them back (see restoreMachineSysctls). */
export async function saveMachineSysctls(): Promise<() => Promise<string[]>> {
  const saved = await readMachineSysctls()
  return () => restoreMachineSysctls(saved)
}
