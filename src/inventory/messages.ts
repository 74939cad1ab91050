import type {ErrorObject} from 'ajv'

import {explainFormat, FORMATS, isFormatName} from './formats.js'
import type {Finding, PathSegment} from './positions.js'

/**
 * Ajv's errors as sentences a user can act on ("must be one of strict, accept-new, pinned", "unknown
 * key \"adress\" (did you mean \"address\"?)"), each with the field path it is about. Ajv runs with
 * `verbose`, so every error carries its schema and the offending data.
 */

/** The parts of a JSON Schema the sentences read. */
export interface SchemaLike {
  readonly type?: string | readonly string[]
  readonly const?: unknown
  readonly enum?: readonly unknown[]
  readonly anyOf?: readonly SchemaLike[]
  readonly format?: string
  readonly pattern?: string
  readonly description?: string
  readonly properties?: Readonly<Record<string, SchemaLike>>
  readonly minimum?: number
  readonly maximum?: number
}

export type AjvError = ErrorObject & {parentSchema?: SchemaLike; data?: unknown; propertyName?: string}

const TYPE_NOUNS: Record<string, string> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  null: 'null',
}

/** A value as the sentence shows it: strings quoted (and shortened), collections by kind. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)
  if (value === null || value === undefined) return 'empty'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  return typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint'
    ? String(value)
    : 'a value'
}

function jsonType(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number'
  return typeof value
}

/** What a schema accepts, as a noun phrase: "an IP address or host name", "a list", "pinned". */
function nounOf(schema: SchemaLike): string {
  if (schema.const !== undefined) return JSON.stringify(schema.const).replace(/^"(.*)"$/, '$1')
  if (schema.format && isFormatName(schema.format)) return FORMATS[schema.format].noun
  if (schema.type === 'array' && schema.description) return schema.description
  const type = typeof schema.type === 'string' ? schema.type : schema.type?.[0]
  return TYPE_NOUNS[type ?? ''] ?? 'a value of another kind'
}

function accepts(schema: SchemaLike, type: string): boolean {
  const declared = schema.type ?? (schema.const === undefined ? undefined : jsonType(schema.const))
  if (declared === undefined) return true
  const types = Array.isArray(declared) ? declared : [declared]
  return types.includes(type) || (type === 'integer' && types.includes('number'))
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({length: b.length + 1}, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    previous = current
  }
  return previous[b.length]
}

/** The candidate a typo most likely meant, if one is close enough. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  const lower = word.toLowerCase()
  // A clipped name ("identity" for identityFile) is as likely a slip as a typo.
  if (lower.length >= 3) {
    const prefixed = candidates.filter((c) => c.toLowerCase().startsWith(lower))
    if (prefixed.length === 1) return prefixed[0]
  }
  for (const candidate of candidates) {
    const d = distance(word.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance) [best, bestDistance] = [candidate, d]
  }
  return bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined
}

function didYouMean(value: unknown, candidates: readonly unknown[]): string {
  if (typeof value !== 'string') return ''
  const match = closest(
    value,
    candidates.filter((c): c is string => typeof c === 'string'),
  )
  return match ? ` (did you mean ${JSON.stringify(match)}?)` : ''
}

function oneOf(allowed: readonly unknown[], others: readonly string[], value: unknown): string {
  const listed = allowed.map(String).join(', ')
  const all = allowed.length > 0 ? [`one of ${listed}`, ...others].join(', or ') : others.join(' or ')
  return `must be ${all}, not ${show(value)}${didYouMean(value, allowed)}`
}

/** JSON pointer → path, numbers only where the data holds a list. */
function toPath(pointer: string, root: unknown): PathSegment[] {
  if (pointer === '') return []
  const path: PathSegment[] = []
  let node = root
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~')
    const segment: PathSegment = Array.isArray(node) && /^\d+$/.test(key) ? Number(key) : key
    path.push(segment)
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined
  }
  return path
}

function within(error: AjvError, instancePath: string): boolean {
  return error.instancePath === instancePath || error.instancePath.startsWith(`${instancePath}/`)
}

/**
 * `anyOf` (unions: "strict | accept-new | pinned", "string or null", "auto | … | list") yields one
 * error per branch. Keep the errors of the one branch the value's type fits (a string for a nullable
 * string), else say in one sentence what the union accepts. Outermost unions first.
 */
function collapseUnions(errors: AjvError[], root: unknown): {rest: AjvError[]; findings: Finding[]} {
  let rest = errors
  const findings: Finding[] = []
  for (;;) {
    const outer = rest.filter((e) => e.keyword === 'anyOf').sort((a, b) => a.schemaPath.length - b.schemaPath.length)[0]
    if (!outer) return {rest, findings}
    const branches = outer.parentSchema?.anyOf ?? []
    const type = jsonType(outer.data)
    const fitting = branches.map((branch, index) => ({branch, index})).filter(({branch}) => accepts(branch, type))
    const structured = fitting.filter(({branch}) => branch.const === undefined && branch.enum === undefined)
    const chosen = structured.length === 1 ? structured[0].index : undefined
    const prefix = `${outer.schemaPath}/`
    rest = rest.filter((e) => {
      if (e === outer) return false
      if (!e.schemaPath.startsWith(prefix) || !within(e, outer.instancePath)) return true
      return chosen !== undefined && e.schemaPath.startsWith(`${prefix}${chosen}/`)
    })
    if (chosen === undefined) {
      const allowed = branches.filter((b) => b.const !== undefined).map((b) => b.const)
      const others = branches.filter((b) => b.const === undefined).map(nounOf)
      findings.push({
        path: toPath(outer.instancePath, root),
        target: 'value',
        message: oneOf(allowed, others, outer.data),
      })
    }
  }
}

function quoteHint(expected: string, value: unknown): string {
  return expected === 'string' && (typeof value === 'number' || typeof value === 'boolean') ? ' (put it in quotes)' : ''
}

function sentence(error: AjvError): string {
  const schema = error.parentSchema ?? {}
  const value = error.data
  const params = error.params as Record<string, unknown>
  switch (error.keyword) {
    case 'required':
      return 'is required'
    case 'additionalProperties': {
      const key = String(params.additionalProperty)
      const known = Object.keys(schema.properties ?? {})
      const match = closest(key, known)
      return match
        ? `unknown key ${JSON.stringify(key)} (did you mean ${JSON.stringify(match)}?)`
        : `unknown key ${JSON.stringify(key)}; the keys here are ${known.join(', ')}`
    }
    case 'type':
      return `must be ${nounOf(schema)}, not ${show(value)}${quoteHint(String(params.type), value)}`
    case 'const':
      return `must be ${String(params.allowedValue)}, not ${show(value)}${didYouMean(value, [params.allowedValue])}`
    case 'enum':
      return oneOf(params.allowedValues as unknown[], [], value)
    case 'format': {
      const format = String(params.format)
      const text = error.propertyName ?? String(value)
      // A proxy URL may carry a password: never repeat it back.
      const shown = format === 'ssh-proxy' && text.includes('@') ? 'the proxy URL' : JSON.stringify(text)
      return isFormatName(format) ? explainFormat(format, text, shown) : `${shown} is not ${format}`
    }
    case 'pattern':
      return `${show(value)} is not ${schema.description ?? `of the form ${String(params.pattern)}`}`
    case 'minLength':
      return params.limit === 1 ? 'must not be empty' : `must have at least ${String(params.limit)} characters`
    case 'maxLength':
      return `must have at most ${String(params.limit)} characters`
    case 'minimum':
    case 'maximum':
      return schema.minimum !== undefined && schema.maximum !== undefined
        ? `must be from ${schema.minimum} to ${schema.maximum}, not ${show(value)}`
        : `must be ${error.keyword === 'minimum' ? 'at least' : 'at most'} ${String(params.limit)}, not ${show(value)}`
    case 'uniqueItems': {
      const list = value as unknown[]
      return `${show(list[Number(params.i)])} appears twice (items ${String(params.j)} and ${String(params.i)})`
    }
    default:
      return error.message ?? `fails the ${error.keyword} rule`
  }
}

function pathOf(error: AjvError, root: unknown): {path: PathSegment[]; target: 'key' | 'value'} {
  const path = toPath(error.instancePath, root)
  const params = error.params as Record<string, unknown>
  switch (error.keyword) {
    case 'required':
      return {path: [...path, String(params.missingProperty)], target: 'key'}
    case 'additionalProperties':
      return {path: [...path, String(params.additionalProperty)], target: 'key'}
    case 'uniqueItems':
      return {path: [...path, Number(params.i)], target: 'value'}
    default:
      return error.propertyName === undefined
        ? {path, target: 'value'}
        : {path: [...path, error.propertyName], target: 'key'}
  }
}

/** Every Ajv error as a finding: unions collapsed, a literal's redundant type error dropped. */
export function findingsFromAjv(errors: readonly AjvError[], root: unknown): Finding[] {
  const {rest, findings} = collapseUnions([...errors], root)
  const parentOf = (e: AjvError) => e.schemaPath.slice(0, e.schemaPath.lastIndexOf('/'))
  for (const error of rest) {
    if (error.keyword === 'propertyNames') continue // its inner error names the key and says why
    const redundant =
      error.keyword === 'type' &&
      rest.some(
        (other) =>
          (other.keyword === 'const' || other.keyword === 'enum') &&
          other.instancePath === error.instancePath &&
          parentOf(other) === parentOf(error),
      )
    if (redundant) continue
    findings.push({...pathOf(error, root), message: sentence(error)})
  }
  return findings
}
