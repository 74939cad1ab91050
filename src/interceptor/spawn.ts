import {fstatSync, statSync} from 'node:fs'
import {constants} from 'node:os'
import {resolve} from 'node:path'

import {UsageError} from '../errors.js'
import {isNativeStartError, loadBinding, type NativeEvent, tracerPath} from './native-binding.js'
import {resolveCommand} from './resolve-command.js'
import {compileRules} from './rules.js'
import {startErrorToHybridError} from './start-errors.js'
import type {ExitStatus, InterceptedProcess, InterceptOptions} from './types.js'

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
)

function signalNumber(signal: NodeJS.Signals): number {
  const number = constants.signals[signal]
  if (number === undefined) throw new UsageError(`Unknown signal ${signal}.`)
  return number
}

function envArray(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(env).flatMap(([name, value]) => (value === undefined ? [] : [`${name}=${value}`]))
}

/**
 * Run `file args…` with every rule applied to it and to all its descendants. Returns once the command
 * has started (exec succeeded); throws a HybridError with one sentence when it cannot: command not
 * found, ptrace not permitted (naming the setting), a rule target missing.
 */
export function spawnIntercepted(file: string, args: string[], options: InterceptOptions): InterceptedProcess {
  const rules = compileRules(options.rules)
  const env = options.env ?? process.env
  const cwd = resolve(options.cwd ?? process.cwd())
  try {
    if (!statSync(cwd).isDirectory()) throw new Error('not a directory')
  } catch {
    throw new UsageError(`The working directory ${cwd} does not exist.`)
  }
  const executable = resolveCommand(file, env, cwd)

  const stdio = options.stdio ?? [0, 1, 2]
  for (const fd of stdio) {
    try {
      fstatSync(fd)
    } catch {
      throw new UsageError(`Descriptor ${fd}, given as the command's stdin, stdout or stderr, is not open.`)
    }
  }

  let settleExit!: (status: ExitStatus) => void
  let settleFinished!: () => void
  const exited = new Promise<ExitStatus>((resolve) => (settleExit = resolve))
  const finished = new Promise<void>((resolve) => (settleFinished = resolve))
  const onEvent = (event: NativeEvent): void => {
    if (event.type === 'exit')
      settleExit({code: event.code, signal: event.signal === 0 ? null : (signalNames.get(event.signal) ?? null)})
    else settleFinished()
  }
  let traced
  try {
    traced = loadBinding().spawn(
      {tracer: tracerPath, file: executable, argv: [file, ...args], env: envArray(env), cwd, stdio, rules},
      onEvent,
    )
  } catch (error) {
    if (isNativeStartError(error)) throw startErrorToHybridError(error, file, cwd)
    throw error
  }
  const native = traced
  return {
    pid: native.pid,
    exited,
    finished,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      native.kill(signalNumber(signal))
    },
    killAll: (signal: NodeJS.Signals = 'SIGTERM') => native.killAll(signalNumber(signal)),
    counters: () => native.counters(),
  }
}
