import {type ErrorCode, UsageError} from '../errors.js'
import type {FieldPath} from './positions.js'

/** One problem in an inventory file, as users and `--json` see it. */
export interface Problem {
  /** The file as the user named it. */
  readonly file: string
  /** 1-based; 0 when the problem is with the file as a whole (it cannot be read). */
  readonly line: number
  readonly column: number
  /** The field: `spec.workers[1].address`; '' for the document as a whole or the file. */
  readonly path: string
  /** A sentence, without the position or path. */
  readonly message: string
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/

/** `['spec', 'workers', 1, 'labels', 'a.b/c']` → `spec.workers[1].labels["a.b/c"]`. */
export function formatPath(path: FieldPath): string {
  let text = ''
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`
    else if (IDENTIFIER.test(segment)) text += text === '' ? segment : `.${segment}`
    else text += `[${JSON.stringify(segment)}]`
  }
  return text
}

/** `lab.yaml:23:7 spec.workers[1].address: "10.0.0.300" is not an IP address or host name`. */
export function formatProblem(problem: Problem): string {
  if (problem.line === 0) return `${problem.file}: ${problem.message}`
  return `${problem.file}:${problem.line}:${problem.column} ${problem.path || '(document)'}: ${problem.message}`
}

/** Sorted by position, then by path and message, so output is stable. */
export function sortProblems(problems: readonly Problem[]): Problem[] {
  return [...problems].sort(
    (a, b) =>
      a.line - b.line || a.column - b.column || a.path.localeCompare(b.path) || a.message.localeCompare(b.message),
  )
}

/**
 * A bad inventory: exit 2, never a stack trace. One problem is the message itself; several are
 * "FILE has N problems:" with one detail line each (HybridCommand prints details indented).
 */
export class InventoryError extends UsageError {
  constructor(
    readonly file: string,
    readonly problems: readonly Problem[],
    code: Extract<ErrorCode, `INVENTORY_${string}`> = 'INVENTORY_INVALID',
  ) {
    const lines = problems.map(formatProblem)
    super(
      lines.length === 1 ? lines[0] : `${file} has ${lines.length} problems:`,
      lines.length === 1 ? [] : lines,
      code,
    )
    this.name = 'InventoryError'
  }

  override toJSON(): Record<string, unknown> {
    return {...super.toJSON(), problems: this.problems}
  }
}
