import {Ajv, type ValidateFunction} from 'ajv'

import {FORMATS, type FormatRule} from './formats.js'
import {type AjvError, findingsFromAjv} from './messages.js'
import type {Finding} from './positions.js'
import {Cluster} from './schema.js'

/**
 * The schema check: Ajv with every error at once (allErrors), the schema's defaults filled in
 * (useDefaults), and the errors' schema and data kept for the sentences (verbose). Compiled once, on
 * first use, so commands that never read an inventory do not pay for it.
 */
let compiled: ValidateFunction | undefined

function validator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv({allErrors: true, useDefaults: true, verbose: true, strict: true})
    for (const [name, rule] of Object.entries(FORMATS) as [string, FormatRule][]) {
      ajv.addFormat(name, {type: 'string', validate: (value: string) => rule.check(value) === undefined})
    }
    compiled = ajv.compile(Cluster)
  }
  return compiled
}

/**
 * Check parsed YAML against the schema. Fills in defaults **in place** (so `data` becomes a
 * ClusterDocument when there are no findings); positions come from the YAML, not from `data`.
 */
export function checkSchema(data: unknown): Finding[] {
  const validate = validator()
  if (validate(data)) return []
  return findingsFromAjv((validate.errors ?? []) as AjvError[], data)
}
