import {closeSync, openSync} from 'node:fs'
import {readFile} from 'node:fs/promises'

import {messageOf} from '../../errors.js'
import {spawnIntercepted} from '../../interceptor/index.js'

/**
 * Is ptrace permitted, for the interceptor k3s runs under? Tried for real: `true` is run under the
 * interceptor itself (fork, PTRACE_TRACEME, its seccomp filter, exec), which is exactly what running k3s
 * needs. When the interceptor's native module is not built, the kernel settings that forbid ptrace are
 * read instead (Yama's ptrace_scope, the capability, a seccomp filter on this process).
 */
export interface PtraceFacts {
  /** undefined: could not be told. */
  readonly permitted?: boolean
  /** The seccomp filter was installed too (known only from a real run). */
  readonly seccompFilter?: boolean
  readonly via: 'interceptor' | 'settings'
  readonly evidence: string
}

const CAP_SYS_PTRACE = 19n

export async function probePtrace(signal: AbortSignal): Promise<PtraceFacts> {
  let nullFd: number | undefined
  try {
    nullFd = openSync('/dev/null', 'r+')
    const child = spawnIntercepted('true', [], {rules: [], stdio: [nullFd, nullFd, nullFd]})
    const onAbort = (): void => child.kill('SIGKILL')
    signal.addEventListener('abort', onAbort, {once: true})
    const status = await child.exited.finally(() => signal.removeEventListener('abort', onAbort))
    if (status.code === 0)
      return {
        permitted: true,
        seccompFilter: true,
        via: 'interceptor',
        evidence: 'ran `true` under the interceptor (ptrace and its seccomp filter work)',
      }
    return {
      via: 'interceptor',
      evidence: `\`true\` under the interceptor ended with ${status.signal ?? `status ${status.code}`}`,
    }
  } catch (error) {
    const message = messageOf(error).replace(/\.$/, '')
    if (/^ptrace is not permitted/.test(message)) return {permitted: false, via: 'interceptor', evidence: message}
    if (/seccomp/i.test(message)) return {permitted: true, seccompFilter: false, via: 'interceptor', evidence: message}
    if (/native module is not built|needs Linux/.test(message)) return fromSettings(message)
    return {via: 'interceptor', evidence: `the interceptor could not run \`true\`: ${message}`}
  } finally {
    if (nullFd !== undefined) closeSync(nullFd)
  }
}

/** What the kernel settings say, when the interceptor itself cannot be tried. */
async function fromSettings(why: string): Promise<PtraceFacts> {
  const scope = (await readFile('/proc/sys/kernel/yama/ptrace_scope', 'utf8').catch(() => '')).trim()
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '')
  const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1]
  const hasCap = capEff !== undefined && ((BigInt(`0x${capEff}`) >> CAP_SYS_PTRACE) & 1n) === 1n
  const prefix = `not tried (${why}); from the settings: `
  if (scope === '3')
    return {
      permitted: false,
      via: 'settings',
      evidence: `${prefix}kernel.yama.ptrace_scope is 3, which forbids ptrace until the next reboot`,
    }
  if (scope === '2' && !hasCap)
    return {
      permitted: false,
      via: 'settings',
      evidence: `${prefix}kernel.yama.ptrace_scope is 2, which allows ptrace only with CAP_SYS_PTRACE, and this process lacks it`,
    }
  const seccomp = /^Seccomp:\s*2/m.test(status)
    ? '; this process runs under a seccomp filter, which may refuse ptrace'
    : ''
  return {
    via: 'settings',
    evidence: `${prefix}kernel.yama.ptrace_scope is ${scope === '' ? 'absent (no Yama)' : scope}, which lets a process trace its own child${seccomp}`,
    ...(seccomp ? {} : {permitted: true}),
  }
}
