import {readFileSync} from 'node:fs'

import {HybridError, UsageError} from '../errors.js'
import type {NativeStartError} from './native-binding.js'

const CAP_SYS_PTRACE = 19n

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

/** Which setting keeps this process from tracing its own child, as far as it can tell. */
export function whyPtraceIsRefused(): string {
  const scope = readOrEmpty('/proc/sys/kernel/yama/ptrace_scope').trim()
  if (scope === '3')
    return 'the kernel setting kernel.yama.ptrace_scope is 3, which forbids ptrace until the next reboot'
  const status = readOrEmpty('/proc/self/status')
  const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1]
  const hasCapPtrace = capEff !== undefined && ((BigInt(`0x${capEff}`) >> CAP_SYS_PTRACE) & 1n) === 1n
  if (scope === '2' && !hasCapPtrace)
    return 'the kernel setting kernel.yama.ptrace_scope is 2, which allows ptrace only with CAP_SYS_PTRACE (run hybrid as root, or set it to 1)'
  if (/^Seccomp:\s*2/m.test(status))
    return "hybrid runs under a seccomp filter that refuses ptrace, as container runtimes' default profiles do (run the container with a profile that allows ptrace, e.g. --security-opt seccomp=unconfined)"
  return `the container or security policy refuses it (AppArmor, SELinux${hasCapPtrace ? '' : ', or the missing CAP_SYS_PTRACE capability'})`
}

/** One sentence a user can act on, for each way the native engine can fail to start a command. */
export function startErrorToHybridError(error: NativeStartError, command: string, cwd: string): HybridError {
  const code = error.code ?? 'unknown error'
  switch (error.stage) {
    case 'ptrace':
      return new HybridError(
        'INTERCEPTOR_UNAVAILABLE',
        `ptrace is not permitted here (${code}): ${whyPtraceIsRefused()}.`,
      )
    case 'seccomp':
      return error.code === 'EINVAL'
        ? new HybridError(
            'INTERCEPTOR_UNAVAILABLE',
            "This kernel cannot install the interceptor's seccomp filter (seccomp: EINVAL; a kernel without CONFIG_SECCOMP_FILTER, or a sandbox that lacks it).",
          )
        : new HybridError('INTERCEPTOR_UNAVAILABLE', `The kernel refused the interceptor's seccomp filter (${code}).`)
    case 'exec':
      if (error.code === 'ENOENT') return new UsageError(`Command not found: ${command}.`)
      if (error.code === 'EACCES') return new UsageError(`${command} cannot be executed (permission denied).`)
      if (error.code === 'ENOEXEC')
        return new UsageError(`${command} is not a program this system can run (exec format error).`)
      return new HybridError('COMMAND_EXEC_FAILED', `${command} could not be executed (${code}).`)
    case 'cwd':
      return new UsageError(`The working directory ${cwd} cannot be entered (${code}).`)
    case 'target':
      return new UsageError(`The rule target directory ${error.path} cannot be opened (${code}).`)
    case 'stdio':
      return new UsageError(`A descriptor given as the command's stdin, stdout or stderr is not open (${code}).`)
    case 'descriptors':
      return new HybridError(
        'INTERCEPTOR_START_FAILED',
        'No free descriptor numbers are left to hand the rule targets to the command (raise the open-files limit, ulimit -n).',
      )
    case 'tracer':
      return new HybridError(
        'INTERCEPTOR_START_FAILED',
        `The interceptor's tracer process ${error.path} could not be started (${code}); rebuild it with npm run build:native.`,
      )
    default:
      return new HybridError(
        'INTERCEPTOR_START_FAILED',
        `Could not start ${command} under the interceptor (${error.stage}: ${code}).`,
      )
  }
}
