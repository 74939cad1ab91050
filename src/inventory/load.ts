import {readFile} from 'node:fs/promises'

import {registerSecret} from '../log/redact.js'
import {takeSecretEnv} from '../util/secret-env.js'
import {checkSchema} from './check-schema.js'
import {crossCheck} from './cross-checks.js'
import {formatPath, InventoryError, type Problem, sortProblems} from './errors.js'
import type {Inventory} from './model.js'
import {parseYaml} from './positions.js'
import {explicitSsh, resolveInventory} from './resolve.js'
import type {ClusterDocument} from './schema.js'

/** The outcome of checking an inventory: every problem, or the resolved inventory. */
export type InventoryCheck =
  | {readonly ok: true; readonly inventory: Inventory}
  | {
      readonly ok: false
      readonly problems: readonly Problem[]
      /** Set when the file itself could not be read (then there is one problem, without a position). */
      readonly unreadable?: 'INVENTORY_NOT_FOUND' | 'INVENTORY_UNREADABLE'
    }

/**
 * Check inventory text in one pass and report everything at once: YAML syntax (positions from the
 * parser), then the schema and the cross-checks on the parsed data (positions looked up from field
 * paths). `file` names the file in messages and is the base for relative paths.
 */
export function checkInventory(text: string, file: string): InventoryCheck {
  const parsed = parseYaml(text)
  const findings = [...parsed.findings]
  // Which ssh keys the file sets itself, before the schema fills in defaults: those beat an OpenSSH config.
  const explicit = explicitSsh(parsed.data)
  if (!parsed.broken) findings.push(...checkSchema(parsed.data), ...crossCheck(parsed.data))
  if (findings.length === 0) {
    try {
      return {ok: true, inventory: resolveInventory(parsed.data as ClusterDocument, file, explicit)}
    } catch (error) {
      if (error instanceof InventoryError) return {ok: false, problems: error.problems}
      throw error
    }
  }
  const problems = findings.map((finding): Problem => {
    const {line, column} = parsed.source.position(finding)
    return {file, line, column, path: formatPath(finding.path), message: finding.message}
  })
  // Two rules can say the same thing about one field (a union's branches); say it once.
  const unique = new Map(problems.map((p) => [`${p.line}:${p.column}:${p.path}:${p.message}`, p]))
  return {ok: false, problems: sortProblems([...unique.values()])}
}

/** Read and check a file; an unreadable file is one problem, with no position. */
export async function checkInventoryFile(file: string): Promise<InventoryCheck> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'INVENTORY_NOT_FOUND' : 'INVENTORY_UNREADABLE'
    return {ok: false, problems: [{file, line: 0, column: 0, path: '', message: unreadable(error)}], unreadable: code}
  }
  return checkInventory(text, file)
}

function unreadable(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'no such file (`hybrid init` writes a starter inventory)'
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read: permission denied'
  if (code === 'EISDIR') return 'is a directory, not an inventory file'
  return `cannot be read (${code ?? String(error)})`
}

/** Parse inventory text; throws InventoryError (exit 2) with every problem. */
export function parseInventory(text: string, file: string): Inventory {
  const result = checkInventory(text, file)
  if (!result.ok) throw new InventoryError(file, result.problems)
  return result.inventory
}

/** Read, check and resolve an inventory file; throws InventoryError (exit 2) with every problem. */
export async function loadInventory(file: string): Promise<Inventory> {
  const result = await checkInventoryFile(file)
  if (!result.ok) throw new InventoryError(file, result.problems, result.unreadable)
  // From the moment hybrid knows which variable holds the token, no child of it inherits that variable.
  if (result.inventory.token.kind === 'env') takeSecretEnv(result.inventory.token.env)
  // The same for the variables that hold registry passwords (src/agent/registries.ts reads them).
  for (const config of Object.values(result.inventory.registries?.configs ?? {}))
    if (config.auth?.password.kind === 'env') takeSecretEnv(config.auth.password.env)
  // Likewise the variables holding identity files' passphrases; their values are redacted in every sink.
  for (const worker of result.inventory.workers)
    if (worker.ssh.passphraseEnv !== undefined) registerSecret(takeSecretEnv(worker.ssh.passphraseEnv))
  return result.inventory
}
