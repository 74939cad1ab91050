import {
  type Document,
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node as YamlNode,
  parseAllDocuments,
  type YAMLError,
} from 'yaml'

/**
 * The inventory's YAML with source positions: every problem, whoever finds it (YAML parser, schema,
 * cross-checks), names a field path; this module turns that path back into the line and column of
 * the user's text. Defaults are applied to the parsed data, never to this document, so positions
 * always refer to what the user wrote.
 */

export type PathSegment = string | number
export type FieldPath = readonly PathSegment[]

/** Where a problem points: at a key (unknown or missing field) or at a value (a bad value). */
export type Target = 'key' | 'value'

export interface Position {
  readonly line: number
  readonly column: number
}

/** A problem before it has a position: what the checks produce. */
export interface Finding {
  readonly path: FieldPath
  readonly target: Target
  readonly message: string
  /** A character offset that overrides the path's position (YAML syntax errors). */
  readonly offset?: number
}

export interface ParsedYaml {
  /** The data as plain JS (undefined when the text holds no document). */
  readonly data: unknown
  readonly source: SourceMap
  /** YAML syntax problems, duplicate keys and unresolved tags. */
  readonly findings: Finding[]
  /** True when the syntax problems make the data unfit for the schema checks. */
  readonly broken: boolean
}

/** Syntax problems after which the data still is what the user meant (so schema checks still run). */
const BENIGN = new Set(['DUPLICATE_KEY', 'TAG_RESOLVE_FAILED'])

export function parseYaml(text: string): ParsedYaml {
  const lineCounter = new LineCounter()
  const docs = parseAllDocuments(text, {lineCounter, prettyErrors: false, uniqueKeys: true})
  const list = Array.isArray(docs) ? docs : []
  const first = list[0]
  const source = new SourceMap(first, lineCounter)
  const findings: Finding[] = []
  let broken = false
  for (const doc of list) {
    for (const error of [...doc.errors, ...doc.warnings]) {
      findings.push(source.syntaxFinding(error))
      if (!BENIGN.has(error.code)) broken = true
    }
  }
  if (list.length > 1) {
    const offset = list[1].range[0]
    findings.push({
      path: [],
      target: 'value',
      offset,
      message: 'a second YAML document begins here; an inventory file holds exactly one',
    })
    broken = true
  }
  const empty = first === undefined || first.contents === null
  if (empty && findings.length === 0) {
    findings.push({path: [], target: 'value', message: 'the file is empty (`hybrid init` writes a starter inventory)'})
    broken = true
  }
  let data: unknown
  try {
    data = first && !empty ? first.toJS({maxAliasCount: 100}) : undefined
  } catch (error) {
    // A "billion laughs" alias bomb, or an alias to nothing: the yaml package refuses to expand it.
    findings.push({path: [], target: 'value', message: `YAML: ${(error as Error).message}`})
    broken = true
  }
  return {data, source, findings, broken}
}

function keyText(key: unknown): string {
  if (isScalar(key)) return String(key.value)
  return String(key)
}

/** Position lookups in one parsed YAML document. */
export class SourceMap {
  constructor(
    private readonly doc: Document.Parsed | undefined,
    private readonly lineCounter: LineCounter,
  ) {}

  /** Line and column (1-based) of a character offset. */
  at(offset: number): Position {
    const {line, col} = this.lineCounter.linePos(offset)
    return {line, column: col}
  }

  /**
   * Where `path` is in the text: the key (or list item) for target `key`, the value for target
   * `value` (the key when the value is empty). A path that is not all there (a missing field) points
   * at its deepest ancestor that is: the key of that mapping, or the start of that list item.
   */
  locate(path: FieldPath, target: Target): Position {
    const root = this.doc?.contents
    if (!root) return {line: 1, column: 1}
    let node: unknown = root
    let anchor: YamlNode | undefined // the key (or item) of the deepest segment found
    for (const segment of path) {
      const collection = this.deref(node)
      if (isMap(collection)) {
        const pair = collection.items.find((p) => keyText(p.key) === String(segment))
        if (!pair) return this.start(anchor ?? root)
        anchor = (isScalar(pair.key) || isCollection(pair.key) ? pair.key : undefined) ?? anchor
        node = pair.value
      } else if (isSeq(collection) && typeof segment === 'number' && collection.items[segment] !== undefined) {
        node = collection.items[segment]
        anchor = node as YamlNode
      } else {
        return this.start(anchor ?? root)
      }
    }
    if (target === 'key' || !this.hasText(node)) return this.start(anchor ?? root)
    return this.start(node as YamlNode)
  }

  /** The field path of the deepest node around `offset` (for YAML syntax errors). */
  pathAt(offset: number): PathSegment[] {
    const path: PathSegment[] = []
    let node: unknown = this.doc?.contents
    // An error at the very end (an unclosed quote) belongs to the last node.
    const end = (node as YamlNode | null | undefined)?.range?.[2]
    if (end !== undefined && offset >= end) offset = end - 1
    for (;;) {
      const collection = this.deref(node)
      if (isMap(collection)) {
        const pair = collection.items.find((p) => this.spans(p, offset))
        if (!pair) return path
        path.push(keyText(pair.key))
        node = pair.value
      } else if (isSeq(collection)) {
        const index = collection.items.findIndex((item) => this.spans(item, offset))
        if (index < 0) return path
        path.push(index)
        node = collection.items[index]
      } else {
        return path
      }
    }
  }

  /** Where a finding points. */
  position(finding: Finding): Position {
    return finding.offset === undefined ? this.locate(finding.path, finding.target) : this.at(finding.offset)
  }

  /** A YAML parser error or warning as a finding with the position the parser gave. */
  syntaxFinding(error: YAMLError): Finding {
    const offset = error.pos[0]
    const path = this.pathAt(offset)
    let message = error.message.split('\n')[0].replace(/\.$/, '')
    if (error.code === 'DUPLICATE_KEY') {
      const key = path.at(-1)
      const first = key === undefined ? undefined : this.firstKeyLine(path.slice(0, -1), String(key))
      message = `duplicate key ${JSON.stringify(String(key ?? ''))}${first ? ` (first given on line ${first})` : ''}: a key may appear only once in a mapping`
    } else {
      message = `YAML syntax: ${message.charAt(0).toLowerCase()}${message.slice(1)}`
    }
    return {path, target: 'value', message, offset}
  }

  private firstKeyLine(mapPath: FieldPath, key: string): number | undefined {
    let node: unknown = this.doc?.contents
    for (const segment of mapPath) {
      const collection = this.deref(node)
      if (isMap(collection)) node = collection.items.find((p) => keyText(p.key) === String(segment))?.value
      else if (isSeq(collection)) node = collection.items[segment as number]
      else return undefined
    }
    const collection = this.deref(node)
    if (!isMap(collection)) return undefined
    const pair = collection.items.find((p) => keyText(p.key) === key)
    return pair ? this.start(pair.key as YamlNode).line : undefined
  }

  private deref(node: unknown): unknown {
    return isAlias(node) && this.doc ? node.resolve(this.doc) : node
  }

  private hasText(node: unknown): boolean {
    if (node === null || node === undefined) return false
    if (isScalar(node)) return node.value !== null || (node.source ?? '') !== ''
    return (node as YamlNode).range !== undefined
  }

  private spans(item: unknown, offset: number): boolean {
    if (isPair(item)) {
      const start = (item.key as YamlNode | null)?.range?.[0]
      const end = (item.value as YamlNode | null)?.range?.[2] ?? (item.key as YamlNode | null)?.range?.[2]
      return start !== undefined && end !== undefined && start <= offset && offset < end
    }
    const range = (item as YamlNode | null)?.range
    return range !== undefined && range !== null && range[0] <= offset && offset < range[2]
  }

  private start(node: YamlNode): Position {
    return this.at(node.range?.[0] ?? 0)
  }
}
