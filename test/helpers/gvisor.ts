import {spawn, type SpawnOptions} from 'node:child_process'
import {fileURLToPath} from 'node:url'

import {hasTool, isRoot, skipUnless} from './requires.js'

/**
 * Real gVisor from Debian's `runsc`. `-force-overlay=false` gives the sandbox a 9p view of the host's
 * root with write access, as in the sandboxes hybrid's users have: no overlayfs, no /dev/kmsg, most
 * /proc/sys tunables missing and writes to vm/overcommit_memory refused.
 */
export type GvisorNetwork = 'none' | 'host'

export function gvisorArgv(command: string[], network: GvisorNetwork = 'none', cwd = process.cwd()): string[] {
  return [
    'runsc',
    `--network=${network}`,
    '--ignore-cgroups',
    'do',
    '-force-overlay=false',
    '-quiet',
    '-cwd',
    cwd,
    ...command,
  ]
}

export function requireGvisor(ctx: Mocha.Context): void {
  skipUnless(
    ctx,
    isRoot() && hasTool('runsc'),
    'gVisor tests need root and runsc (apt-get install runsc; .ci/run installs it)',
  )
}

export interface GvisorResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** A sandbox in a lab's coordinator namespace (scripts/lab/in-sandbox.sh), instead of runsc's own network. */
export interface LabSandbox {
  readonly netns: string
  /** Put on the sandbox's loopback device before the command starts (the advertised address). */
  readonly loopbackAddress?: string
}

const IN_SANDBOX_SH = fileURLToPath(new URL('../../../scripts/lab/in-sandbox.sh', import.meta.url))

/** Run `command` inside a fresh gVisor sandbox and collect its output. */
export function runInGvisor(
  command: string[],
  options: {
    network?: GvisorNetwork | LabSandbox
    cwd?: string
    env?: NodeJS.ProcessEnv
    timeoutMs?: number
  } = {},
): Promise<GvisorResult> {
  const network = options.network ?? 'none'
  const [file, ...args] =
    typeof network === 'string'
      ? gvisorArgv(command, network, options.cwd)
      : [
          'bash',
          IN_SANDBOX_SH,
          '--netns',
          network.netns,
          ...(network.loopbackAddress ? ['--loopback-address', network.loopbackAddress] : []),
          '--cwd',
          options.cwd ?? process.cwd(),
          '--',
          ...command,
        ]
  const spawnOptions: SpawnOptions = {env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe']}
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, spawnOptions)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d) => (stdout += d))
    child.stderr!.on('data', (d) => (stderr += d))
    // At the time limit: SIGTERM first, so runsc removes the netns, veth and iptables rules it made
    // for the sandbox (a SIGKILLed runsc leaves them behind); SIGKILL only if it does not stop.
    let killTimer: NodeJS.Timeout | undefined
    const timer = setTimeout(() => {
      child.kill('SIGTERM')
      killTimer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    }, options.timeoutMs ?? 120_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      clearTimeout(killTimer)
      resolve({code, signal, stdout, stderr})
    })
  })
}
