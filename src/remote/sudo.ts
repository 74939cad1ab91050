import {registerSecret} from '../log/redact.js'
import {withSecrets} from '../util/secret-env.js'
import type {RunOptions, RunResult} from './host.js'

/**
 * How a worker's login user becomes root, decided once per connection from `ssh.sudo`:
 *  - never: only a root login can do root's work;
 *  - nopasswd: `sudo -n`, which must work without a password;
 *  - password: `sudo -S` with HYBRID_SUDO_PASSWORD fed on standard input (never on a command line),
 *    unless `sudo -n` already works;
 *  - auto: a root login needs nothing, else `sudo -n` if it works.
 */
export type SudoMode = 'auto' | 'never' | 'nopasswd' | 'password'

/** What the login user can do (the worker table's SUDO column). */
export type SudoAbility =
  /** Logged in as root (uid 0): no sudo needed. */
  | 'root'
  | 'nopasswd'
  | 'password'
  /** Cannot become root; `reason` says why and what to change. */
  | 'none'

export interface SudoResolution {
  readonly ability: SudoAbility
  /** For 'none': one sentence (without the host name) saying why and what would fix it. */
  readonly reason?: string
}

export const SUDO_PASSWORD_ENV = 'HYBRID_SUDO_PASSWORD'

type Run = (argv: readonly string[], options?: RunOptions) => Promise<RunResult>

/** Probe the host (read-only: `id -u`, `sudo -n true`, and with a password `sudo -S -k true`). */
export async function resolveSudo(
  mode: SudoMode,
  user: string,
  run: Run,
  env: NodeJS.ProcessEnv = withSecrets(),
): Promise<SudoResolution> {
  const uid = (await run(['id', '-u'])).stdout.trim()
  if (uid === '0') return {ability: 'root'}
  if (mode === 'never')
    return {ability: 'none', reason: `ssh.sudo is never and user ${user} is not root; log in as root or allow sudo`}
  const hasSudo = (await run(['sh', '-c', 'command -v sudo'])).exitCode === 0
  if (!hasSudo) return {ability: 'none', reason: `user ${user} is not root and sudo is not installed; log in as root`}
  if ((await run(['sudo', '-n', 'true'])).exitCode === 0) return {ability: 'nopasswd'}
  if (mode === 'password') {
    const password = env[SUDO_PASSWORD_ENV]
    if (!password)
      return {
        ability: 'none',
        reason: `ssh.sudo is password but ${SUDO_PASSWORD_ENV} is not set; set it to ${user}'s password`,
      }
    registerSecret(password)
    const tried = await run(['sudo', '-S', '-k', '-p', '', 'true'], {stdin: `${password}\n`})
    if (tried.exitCode === 0) return {ability: 'password'}
    return {ability: 'none', reason: `sudo refused the password in ${SUDO_PASSWORD_ENV} for user ${user}`}
  }
  return {
    ability: 'none',
    reason:
      mode === 'nopasswd'
        ? `user ${user} cannot sudo without a password; add a NOPASSWD sudoers entry, or set ssh.sudo: password and ${SUDO_PASSWORD_ENV}`
        : `user ${user} is not root and cannot sudo without a password; log in as root, add a NOPASSWD sudoers entry, or set ssh.sudo: password and ${SUDO_PASSWORD_ENV}`,
  }
}

/** `argv` as root under `ability`, and what goes first on its standard input (the password line). */
export function asRoot(
  argv: readonly string[],
  ability: SudoAbility,
  env: NodeJS.ProcessEnv = withSecrets(),
): {argv: string[]; stdinPrefix?: string} {
  switch (ability) {
    case 'root':
      return {argv: [...argv]}
    case 'nopasswd':
      return {argv: ['sudo', '-n', '--', ...argv]}
    case 'password':
      // -k: always read the password, so the line never falls through to the command's own stdin.
      return {argv: ['sudo', '-S', '-k', '-p', '', '--', ...argv], stdinPrefix: `${env[SUDO_PASSWORD_ENV] ?? ''}\n`}
    case 'none':
      throw new Error('asRoot called for a user who cannot become root')
  }
}
