import {chmodSync, mkdirSync} from 'node:fs'
import {join} from 'node:path'
import pino, {type Logger} from 'pino'
import {prettyFactory} from 'pino-pretty'

import {stateDir} from '../state/paths.js'
import {redactLine} from './redact.js'
import {RotatingFile} from './rotating-file.js'
import {writeStderr} from './terminal.js'

export type {Logger} from 'pino'
export type LogFormat = 'pretty' | 'json'
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'

export interface LoggerOptions {
  /** pretty: human lines on stderr; json: one JSON object per line on stderr. */
  format: LogFormat
  /** Least severe level written to stderr (default info). The log file always gets debug and above. */
  level?: string
  /** The command's name, recorded in every line. */
  command: string
  /** Also write every line, as JSON, to the log file (default true; commands and tests may opt out). */
  file?: boolean
  /** The log file (default `logFilePath()`). */
  filePath?: string
}

/** `<stateDir>/logs/hybrid.log`: every command's lines, JSON, newest at the end. */
export function logFilePath(): string {
  return join(stateDir(), 'logs', 'hybrid.log')
}

const LEVELS: readonly string[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal']

/**
 * The logger every command uses: stderr in the chosen format, plus the JSON log file. Every line is
 * redacted (redact.ts) once, before any sink sees it, so no sink can leak what another hides. Child
 * loggers (`logger.child({host})`) carry the host name into every line.
 */
export function createLogger(options: LoggerOptions): Logger {
  const level = LEVELS.includes(options.level ?? '') ? (options.level as LogLevel) : 'info'
  const streams: pino.StreamEntry[] = [{level, stream: options.format === 'pretty' ? prettySink(level) : jsonSink()}]
  if (options.file ?? true) {
    const fileLevel: LogLevel = level === 'trace' ? 'trace' : 'debug'
    streams.push({level: fileLevel, stream: fileSink(options.filePath ?? logFilePath())})
  }
  const lowest = streams.map((s) => s.level as string).sort((a, b) => LEVELS.indexOf(a) - LEVELS.indexOf(b))[0]
  return pino(
    {
      level: lowest,
      base: {pid: process.pid, command: options.command},
      hooks: {streamWrite: redactLine},
      serializers: {err: pino.stdSerializers.err, error: pino.stdSerializers.err},
    },
    pino.multistream(streams),
  )
}

/** JSON lines on stderr, through the terminal writer so progress rows stay intact. */
function jsonSink(): pino.DestinationStream {
  return {write: (line: string) => writeStderr(line)}
}

/**
 * Human lines on stderr (pino-pretty, formatted synchronously in this process). Below debug a logged
 * error shows its message only: users read sentences, the stack is in the log file.
 */
function prettySink(level: LogLevel): pino.DestinationStream {
  const verbose = level === 'debug' || level === 'trace'
  const pretty = prettyFactory({
    colorize: Boolean(process.stderr.isTTY) && !process.env.NO_COLOR,
    translateTime: 'SYS:HH:MM:ss',
    // phaseError: the sentence the command prints last as `hybrid: …`, not to be said twice.
    ignore: 'pid,hostname,command,host,phase,step,phaseError',
    messageFormat: '{if host}{host}: {end}{msg}',
    singleLine: false,
  })
  return {
    write(line: string) {
      let entry: Record<string, unknown>
      try {
        entry = JSON.parse(line) as Record<string, unknown>
      } catch {
        writeStderr(line)
        return
      }
      if (!verbose) {
        briefErrors(entry)
        briefFields(entry)
      }
      writeStderr(pretty(entry))
    },
  }
}

/** Replace `err`/`error` objects by their message, or drop them when the message already says it. */
function briefErrors(entry: Record<string, unknown>): void {
  for (const key of ['err', 'error']) {
    const value = entry[key] as {message?: unknown} | undefined
    if (!value || typeof value !== 'object') continue
    const message = typeof value.message === 'string' ? value.message : undefined
    if (message === undefined || (typeof entry.msg === 'string' ? entry.msg : '').includes(message)) delete entry[key]
    else entry[key] = message
  }
}

/**
 * A field the message already says (a word, or a list of words it lists) is dropped; another list of
 * words shows on one line (pino-pretty would give each its own). The JSON sinks keep the fields as data.
 */
function briefFields(entry: Record<string, unknown>): void {
  const message = typeof entry.msg === 'string' ? entry.msg : ''
  for (const [key, value] of Object.entries(entry)) {
    if (key === 'msg' || key === 'level' || key === 'time') continue
    const words = Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number')
    const text = words ? value.join(', ') : typeof value === 'string' ? value : undefined
    if (text === undefined) continue
    if (text !== '' && message.includes(text)) delete entry[key]
    else if (words) entry[key] = text
  }
}

/**
 * The JSON log file: directory 0700, file 0600 from its creation (it may hold host names and paths a
 * user would not publish). Written synchronously, so the last lines survive `process.exit`; rotated by
 * size (rotating-file.ts), also while a long-lived supervisor writes to it.
 */
function fileSink(path: string): pino.DestinationStream {
  const dir = join(path, '..')
  mkdirSync(dir, {recursive: true, mode: 0o700})
  chmodSync(dir, 0o700)
  const file = new RotatingFile(path)
  return {write: (line: string) => file.write(line)}
}
