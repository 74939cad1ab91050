import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {fileURLToPath} from 'node:url'

import {HybridError} from '../errors.js'
import type {InterceptCounters} from './types.js'

/** A rule as the native engine takes it: already validated, normalized and sorted. */
export interface NativeRule {
  /** Normalized absolute directory the path must be under: "/proc/sys/vm". */
  prefix: string
  /** File rule: the remainder must be exactly this name; '' for a directory rule. */
  name: string
  /** The directory the remainder is resolved in. */
  dir: string
  /** Counter key: the rule's `from`. */
  key: string
  always: boolean
}

export interface NativeSpawnSpec {
  /** The tracer executable the addon starts (a process of its own; see docs/interceptor.md). */
  tracer: string
  file: string
  argv: string[]
  env: string[]
  cwd: string
  stdio: [number, number, number]
  rules: NativeRule[]
}

export type NativeEvent = {type: 'exit'; code: number | null; signal: number} | {type: 'done'}

export interface NativeTracedProcess {
  readonly pid: number
  counters(): InterceptCounters
  kill(signal: number): boolean
  killAll(signal: number): number
}

/** Thrown by `spawn` when the command could not start; `stage` says where. */
export interface NativeStartError extends Error {
  stage: 'target' | 'descriptors' | 'stdio' | 'fork' | 'ptrace' | 'cwd' | 'seccomp' | 'exec' | 'thread' | 'tracer'
  errno: number
  code: string | null
  path: string
}

export interface NativeBinding {
  spawn(spec: NativeSpawnSpec, onEvent: (event: NativeEvent) => void): NativeTracedProcess
}

// dist/src/interceptor/ → native/build/Release/ at the package root.
const buildDir = fileURLToPath(new URL('../../../native/build/Release/', import.meta.url))
const addonPath = `${buildDir}hybrid_interceptor.node`
/** The tracer process's executable, built beside the addon. */
export const tracerPath = `${buildDir}hybrid_tracer`

let binding: NativeBinding | undefined

export function loadBinding(): NativeBinding {
  if (binding) return binding
  if (process.platform !== 'linux')
    throw new HybridError('INTERCEPTOR_UNAVAILABLE', 'the interceptor needs Linux (it is built on ptrace and seccomp)')
  for (const path of [addonPath, tracerPath]) {
    if (!existsSync(path))
      throw new HybridError(
        'INTERCEPTOR_NOT_BUILT',
        `the interceptor's native module is not built (${path} is missing; run npm run build:native)`,
      )
  }
  binding = createRequire(import.meta.url)(addonPath) as NativeBinding
  return binding
}

export function isNativeStartError(error: unknown): error is NativeStartError {
  return error instanceof Error && typeof (error as Partial<NativeStartError>).stage === 'string'
}
