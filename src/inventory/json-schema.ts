import {FORMATS, type FormatRule, isFormatName} from './formats.js'
import {Cluster} from './schema.js'

/**
 * inventory/schema.json, generated from the same TypeBox schema the loader validates with. Editors do
 * not know hybrid's custom formats, so each format-bearing field also gets the format's description
 * and, where a regular expression states the rule exactly, its `pattern`; and editors do not fill in
 * defaults, so keys with a default are not `required` there.
 */

type JsonObject = Record<string, unknown>

function annotate(node: unknown): void {
  if (Array.isArray(node)) {
    node.forEach(annotate)
    return
  }
  if (node === null || typeof node !== 'object') return
  const schema = node as JsonObject
  if (typeof schema.format === 'string' && isFormatName(schema.format)) {
    const rule: FormatRule = FORMATS[schema.format]
    schema.description ??= rule.description
    if (rule.pattern !== undefined) schema.pattern ??= rule.pattern
  }
  // TypeBox lists every non-optional key as required; the loader fills in defaults before checking,
  // but editors do not, so a key with a default is not required in the export.
  const properties = schema.properties as Record<string, JsonObject> | undefined
  if (Array.isArray(schema.required) && properties) {
    schema.required = schema.required.filter((key: string) => properties[key]?.default === undefined)
    if ((schema.required as string[]).length === 0) delete schema.required
  }
  Object.values(schema).forEach(annotate)
}

/** The JSON Schema (draft 7) of the inventory format. */
export function inventoryJsonSchema(): JsonObject {
  // JSON round trip: drops TypeBox's symbol keys and gives a copy that is safe to annotate.
  const copy = JSON.parse(JSON.stringify(Cluster)) as JsonObject
  annotate(copy)
  return {$schema: 'http://json-schema.org/draft-07/schema#', ...copy}
}

/** The file's exact text, as scripts/write-schema.ts writes it and the staleness test compares it. */
export function inventoryJsonSchemaText(): string {
  return `${JSON.stringify(inventoryJsonSchema(), null, 2)}\n`
}
