import {open} from 'node:fs/promises'

/** The kubelet's OOM watcher opens /dev/kmsg for reading; so does the probe (and closes it, reading nothing). */
export interface KmsgFacts {
  readonly opens: boolean
  readonly evidence: string
}

export const KMSG = '/dev/kmsg'

export async function probeKmsg(): Promise<KmsgFacts> {
  try {
    const handle = await open(KMSG, 'r')
    await handle.close()
    return {opens: true, evidence: `${KMSG} opens for reading`}
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error)
    return {opens: false, evidence: `${KMSG} does not open: ${code === 'ENOENT' ? 'ENOENT (no such device)' : code}`}
  }
}
