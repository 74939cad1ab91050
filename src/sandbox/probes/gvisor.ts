import {readFile} from 'node:fs/promises'
import {pathExists} from '../../util/path-exists.js'

/**
 * Is this gVisor, and on which platform? Tells checked inside Debian's runsc (2022-12) and absent on
 * Linux: gVisor's procfs has a `sentry-meminfo` file no kernel has, and `/proc/version` is always its
 * fixed fake 4.4.0 string. gVisor deliberately does not tell the sandbox its platform (ptrace, systrap,
 * kvm); the cost of one trivial syscall tells them apart well enough to name it as an estimate: the
 * ptrace platform pays two context switches per syscall (tens of µs), systrap and kvm a few µs or less.
 */
export interface GvisorFacts {
  readonly gvisor: boolean
  /** What gave it away (empty on Linux). */
  readonly tells: readonly string[]
  /** Estimated platform, only under gVisor. */
  readonly platform?: 'ptrace' | 'systrap or kvm'
  /** Median cost of one getegid(2), in microseconds. */
  readonly syscallMicros: number
}

const GVISOR_VERSION = /^Linux version 4\.4\.0 #1 SMP Sun Jan 10 15:06:54 PST 2016/

/** Above this a syscall costs what the ptrace platform's stops cost. */
const PTRACE_PLATFORM_MICROS = 8

export async function probeGvisor(): Promise<GvisorFacts> {
  const tells: string[] = []
  if (await pathExists('/proc/sentry-meminfo')) tells.push("/proc/sentry-meminfo exists (gVisor's Sentry)")
  const version = await readFile('/proc/version', 'utf8').catch(() => '')
  if (GVISOR_VERSION.test(version)) tells.push(`/proc/version is gVisor's fixed "${version.trim()}"`)
  const syscallMicros = measureSyscallMicros()
  const gvisor = tells.length > 0
  if (!gvisor) return {gvisor, tells, syscallMicros}
  return {gvisor, tells, syscallMicros, platform: syscallMicros >= PTRACE_PLATFORM_MICROS ? 'ptrace' : 'systrap or kvm'}
}

/** One line for the preflight's environment summary. */
export function describeGvisor(facts: GvisorFacts): string {
  if (!facts.gvisor) return `not gVisor (a syscall costs ${facts.syscallMicros.toFixed(1)} µs)`
  return `gVisor, ${facts.platform} platform (estimated: a syscall costs ${facts.syscallMicros.toFixed(1)} µs)`
}

function measureSyscallMicros(): number {
  const batches: number[] = []
  for (let b = 0; b < 5; b++) {
    const n = 400
    const start = process.hrtime.bigint()
    for (let i = 0; i < n; i++) process.getegid?.()
    batches.push(Number(process.hrtime.bigint() - start) / n / 1000)
  }
  batches.sort((a, b) => a - b)
  return batches[2]
}
