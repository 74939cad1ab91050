import {readFile} from 'node:fs/promises'

/**
 * Is seccomp filtering available, with the SECCOMP_RET_TRACE action the interceptor's filter returns?
 * Linux lists its actions in /proc/sys/kernel/seccomp/actions_avail (4.14+). gVisor has no such file
 * but implements seccomp-bpf with SECCOMP_RET_TRACE (and not user notification). The ptrace probe's real
 * run of the interceptor settles it where the native module is built.
 */
export interface SeccompFacts {
  readonly available?: boolean
  /** This process already runs under a filter (a container runtime's profile). */
  readonly filtered: boolean
  readonly evidence: string
}

export async function probeSeccomp(inGvisor: boolean): Promise<SeccompFacts> {
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '')
  const mode = /^Seccomp:\s*(\d)/m.exec(status)?.[1]
  const filtered = mode === '2'
  const under = filtered ? '; this process already runs under a seccomp filter' : ''
  if (mode === undefined)
    return {available: false, filtered, evidence: 'the kernel has no seccomp (no Seccomp line in /proc/self/status)'}
  if (inGvisor)
    return {available: true, filtered, evidence: `gVisor implements seccomp-bpf with SECCOMP_RET_TRACE${under}`}
  const actions = (await readFile('/proc/sys/kernel/seccomp/actions_avail', 'utf8').catch(() => '')).trim()
  if (actions === '')
    return {filtered, evidence: `seccomp present, its actions are not listed (kernel older than 4.14?)${under}`}
  const trace = actions.split(/\s+/).includes('trace')
  return {
    available: trace,
    filtered,
    evidence: `actions available: ${actions}${trace ? '' : " (no trace: the interceptor's filter cannot work)"}${under}`,
  }
}
