import {mkdirSync} from 'node:fs'
import {join} from 'node:path'
import pino, {type Logger} from 'pino'

import {stateDir} from '../state/paths.js'

export type {Logger} from 'pino'
export type LogFormat = 'pretty' | 'json'

export interface LoggerOptions {
  /** pretty: human lines on stderr; json: one JSON object per line on stderr. */
  format: LogFormat
  level?: string
  /** The command's name, recorded in every line of the log file. */
  command: string
  /** Also write every line, as JSON, to `<stateDir>/logs/hybrid.log`. Off in unit tests. */
  file?: boolean
}

/** Field paths whose values never reach any sink (DESIGN.md §3: tokens, passwords, keys, kubeconfigs). */
export const REDACT_PATHS = ['token', 'password', 'privateKey', 'passphrase', 'kubeconfig', '*.token', '*.password', '*.privateKey', '*.passphrase', '*.kubeconfig']

/** The logger every command uses: stderr in the chosen format, plus the JSON log file. */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? 'info'
  const streams: pino.StreamEntry[] = [{level: level as pino.Level, stream: pino.destination(2)}]
  if (options.file) {
    const dir = join(stateDir(), 'logs')
    mkdirSync(dir, {recursive: true, mode: 0o700})
    streams.push({level: 'debug', stream: pino.destination({dest: join(dir, 'hybrid.log'), mkdir: true, append: true})})
  }
  return pino({level: 'debug', base: {command: options.command}, redact: {paths: REDACT_PATHS, censor: '[redacted]'}}, pino.multistream(streams))
}
