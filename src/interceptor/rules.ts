import {statSync} from 'node:fs'
import {posix} from 'node:path'

import {UsageError} from '../errors.js'
import type {NativeRule} from './native-binding.js'
import type {Rule} from './types.js'

function normalizeAbsolute(path: string, role: string): string {
  if (!posix.isAbsolute(path)) throw new UsageError(`The rule ${role} ${JSON.stringify(path)} is not an absolute path.`)
  const normalized = posix.normalize(path).replace(/\/+$/, '')
  if (normalized === '') throw new UsageError(`The rule ${role} cannot be the root directory.`)
  return normalized
}

/**
 * Check the rules and turn them into what the engine matches: a directory prefix, and for a file rule
 * the one name below it. The engine hands each target directory down to the command as a descriptor
 * and resolves the rest of the path there, so a file rule's target must carry the source's file name.
 * Longest prefix first, so a nested rule wins over the one around it.
 */
export function compileRules(rules: Rule[]): NativeRule[] {
  const compiled = rules.map((rule): NativeRule => {
    const from = normalizeAbsolute(rule.from, 'source')
    const to = normalizeAbsolute(rule.to, 'target')
    if (rule.mode !== 'missing' && rule.mode !== 'always')
      throw new UsageError(`The rule mode ${JSON.stringify(rule.mode)} is neither missing nor always.`)
    let isDirectory: boolean
    try {
      isDirectory = statSync(to).isDirectory()
    } catch {
      throw new UsageError(`The rule target ${to} (for ${from}) does not exist; create it first.`)
    }
    const always = rule.mode === 'always'
    if (isDirectory) return {prefix: from, name: '', dir: to, key: rule.from, always}
    if (posix.basename(from) !== posix.basename(to)) {
      throw new UsageError(
        `The rule target ${to} is a file named differently from ${from}; a file rule keeps the file name (point it at ${posix.join(posix.dirname(to), posix.basename(from))}).`,
      )
    }
    return {prefix: posix.dirname(from), name: posix.basename(from), dir: posix.dirname(to), key: rule.from, always}
  })
  return compiled.sort((a, b) => b.prefix.length + b.name.length - (a.prefix.length + a.name.length))
}
