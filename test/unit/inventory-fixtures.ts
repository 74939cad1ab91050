import {stringify} from 'yaml'

import type {Problem} from '../../src/inventory/errors.js'
import {checkInventory} from '../../src/inventory/load.js'
import type {Inventory} from '../../src/inventory/model.js'

/** Shared by the inventory tests: a valid document to mutate, and checks that return what users see. */

export const FILE = 'test.yaml'

/** A real ed25519 public key (generated with ssh-keygen), for hostKey. */
export const ED25519_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMP/0NB+kEXuSikZ+jJh042Um3ti0iw7I59AOXYhugGj'

export type Doc = Record<string, any>

export function minimal(): Doc {
  return {
    apiVersion: 'hybrid.dev/v1alpha1',
    kind: 'Cluster',
    metadata: {name: 'lab'},
    spec: {
      token: {file: 'lab.token'},
      workers: [
        {name: 'w1', address: '10.213.0.11'},
        {name: 'w2', address: '10.213.0.12'},
      ],
    },
  }
}

/** The problems of a text (none when it is valid). */
export function problemsOf(text: string, file = FILE): readonly Problem[] {
  const result = checkInventory(text, file)
  return result.ok ? [] : result.problems
}

/** The problems of a document, written as YAML. */
export function problemsOfDoc(doc: Doc): readonly Problem[] {
  return problemsOf(stringify(doc))
}

/** The resolved inventory of a text that must be valid (the assertion names the problems otherwise). */
export function inventoryOf(text: string, file = FILE): Inventory {
  const result = checkInventory(text, file)
  if (!result.ok)
    throw new Error(
      `expected a valid inventory, got:\n${result.problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`).join('\n')}`,
    )
  return result.inventory
}

/** `LINE:COL path: message` — compact, for exact comparisons. */
export function brief(problem: Problem): string {
  return `${problem.line}:${problem.column} ${problem.path}: ${problem.message}`
}
