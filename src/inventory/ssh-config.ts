import {readFileSync} from 'node:fs'
import {homedir, userInfo} from 'node:os'
import {join} from 'node:path'

import SSHConfig from 'ssh-config'

import type {HostKeyPolicyName} from './schema.js'

/**
 * An OpenSSH client config file (`ssh.config`) read as ssh reads it for `ssh ADDRESS`: the `ssh-config`
 * package parses it and applies OpenSSH's matching (`Host` patterns, `Match`, the first value obtained
 * wins); this module turns the result into hybrid's settings. `Match exec` is never run (it would run a
 * command while an inventory is read) and so never matches; `Include` is refused (not followed). A value
 * hybrid cannot use is a problem naming the config file and line.
 */

/** What the config says for one host, in hybrid's terms (only what it sets). */
export interface SshConfigValues {
  readonly hostName?: string
  readonly user?: string
  readonly port?: number
  readonly identityFile?: string
  readonly knownHosts?: string
  readonly hostKeyPolicy?: HostKeyPolicyName
  /** ProxyJump's hops in order, first dialled first ("none": an empty list). */
  readonly proxyJump?: readonly JumpHop[]
}

/** One hop of ProxyJump: `[user@]host[:port]`. */
export interface JumpHop {
  readonly host: string
  readonly user?: string
  readonly port?: number
}

/** A value of the config file hybrid cannot use: the file, its line (1-based) and a sentence. */
export class SshConfigProblem extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(message)
    this.name = 'SshConfigProblem'
  }
}

export interface LoadedConfig {
  readonly file: string
  readonly lines: readonly string[]
  readonly config: SSHConfig
}

/** `~/.ssh/config` for `true`, else the (absolute) path given. */
export function sshConfigPath(setting: true | string): string {
  return setting === true ? join(homedir(), '.ssh', 'config') : setting
}

function load(file: string): LoadedConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new SshConfigProblem(file, 0, code === 'ENOENT' ? 'no such file' : `cannot be read (${code})`)
  }
  const lines = text.split(/\r?\n/)
  const include = lines.findIndex((line) => /^\s*include(\s|=)/i.test(line))
  if (include !== -1)
    throw new SshConfigProblem(
      file,
      include + 1,
      'Include is not followed by hybrid; point ssh.config at a file that holds the workers’ hosts itself',
    )
  let config: SSHConfig
  try {
    config = SSHConfig.parse(text)
  } catch (error) {
    throw new SshConfigProblem(file, 0, `is not an OpenSSH config file: ${(error as Error).message}`)
  }
  return {file, lines, config}
}

/** The line (1-based) where `keyword` gives `value` (the first line with that keyword when none does). */
function lineOf(config: LoadedConfig, keyword: string, value: string): number {
  const pattern = new RegExp(`^\\s*${keyword}(\\s*=\\s*|\\s+)(.*)$`, 'i')
  let first = 0
  for (const [i, line] of config.lines.entries()) {
    const match = pattern.exec(line)
    if (!match) continue
    if (first === 0) first = i + 1
    if (match[2].includes(value)) return i + 1
  }
  return first
}

/** OpenSSH's StrictHostKeyChecking onto hybrid's policies (no policy accepts a changed key). */
const HOST_KEY_POLICIES: Record<string, HostKeyPolicyName> = {
  yes: 'strict',
  ask: 'strict', // nobody is there to ask
  'accept-new': 'accept-new',
  no: 'accept-new',
  off: 'accept-new',
}

/** The config file, read and parsed (once per inventory read: a file of a few hundred lines). */
export function readSshConfig(file: string): LoadedConfig {
  return load(file)
}

/** What `config` says for `ssh HOST` (the address as the inventory gives it). */
export function lookUpSshConfig(config: LoadedConfig, host: string): SshConfigValues {
  const file = config.file
  const computed = config.config.compute(host, {ignoreCase: true, matchExec: false})
  const first = (key: string): string | undefined => {
    const value = computed[key]
    return Array.isArray(value) ? value[0] : value
  }
  const problem = (keyword: string, value: string, sentence: string) =>
    new SshConfigProblem(file, lineOf(config, keyword, value), sentence)

  const hostName = first('hostname')
  const user = first('user')
  const context = {host: hostName ?? host, user}
  const expand = (keyword: string, value: string) => {
    try {
      return expandTokens(value, context)
    } catch (error) {
      throw problem(keyword, value, `${keyword} ${value}: ${(error as Error).message}`)
    }
  }
  const values: {-readonly [K in keyof SshConfigValues]: SshConfigValues[K]} = {}
  if (hostName !== undefined) values.hostName = expand('HostName', hostName)
  if (user !== undefined) values.user = user
  const port = first('port')
  if (port !== undefined) {
    if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)
      throw problem('Port', port, `Port ${port} is not a port number (1-65535)`)
    values.port = Number(port)
  }
  const identityFile = first('identityfile')
  if (identityFile !== undefined && identityFile.toLowerCase() !== 'none')
    values.identityFile = expand('IdentityFile', identityFile)
  const knownHosts = first('userknownhostsfile')
  if (knownHosts !== undefined) values.knownHosts = expand('UserKnownHostsFile', knownHosts)
  const strict = first('stricthostkeychecking')
  if (strict !== undefined) {
    const policy = HOST_KEY_POLICIES[strict.toLowerCase()]
    if (!policy)
      throw problem(
        'StrictHostKeyChecking',
        strict,
        `StrictHostKeyChecking ${strict} is not yes, ask, accept-new, no or off`,
      )
    values.hostKeyPolicy = policy
  }
  const jump = first('proxyjump')
  if (jump !== undefined) {
    values.proxyJump =
      jump.toLowerCase() === 'none'
        ? []
        : jump.split(',').map((hop) => {
            const parsed = parseHop(hop.trim())
            if (!parsed) throw problem('ProxyJump', jump, `ProxyJump ${jump}: ${hop} is not [user@]host[:port]`)
            return parsed
          })
  }
  return values
}

/** `[user@]host[:port]` (an IPv6 host in brackets), or undefined when it is not one; ssh:// URIs too. */
function parseHop(hop: string): JumpHop | undefined {
  const match = /^(?:ssh:\/\/)?(?:([^@\s]+)@)?(\[[0-9A-Fa-f:.]+\]|[^:@\s[\]]+)(?::(\d+))?$/.exec(hop)
  if (!match) return undefined
  const port = match[3] === undefined ? undefined : Number(match[3])
  if (port !== undefined && (port < 1 || port > 65535)) return undefined
  return {
    host: match[2].replace(/^\[|\]$/g, ''),
    ...(match[1] === undefined ? {} : {user: match[1]}),
    ...(port === undefined ? {} : {port}),
  }
}

/** OpenSSH's `~` and the tokens hybrid can know when it reads the file: %d %u %h %r %%. */
function expandTokens(value: string, context: {host: string; user?: string}): string {
  const withHome = value.replace(/^~(?=\/|$)/, homedir())
  return withHome.replace(/%(.)/g, (_, token: string) => {
    switch (token) {
      case '%':
        return '%'
      case 'd':
        return homedir()
      case 'u':
        return userInfo().username
      case 'h':
        return context.host
      case 'r':
        if (context.user !== undefined) return context.user
        break
    }
    throw new Error(`the token %${token} is not one hybrid expands (%d, %u, %h, %r, %%)`)
  })
}
