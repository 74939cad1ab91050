import {strict as assert} from 'node:assert'

import {formatProblem, InventoryError} from '../../src/inventory/errors.js'
import {parseInventory} from '../../src/inventory/load.js'
import {brief, problemsOf} from './inventory-fixtures.js'

/**
 * Positions: every problem's line and column point at the offending key (unknown or missing field)
 * or value (bad value), in the user's text — exact numbers on small fixtures. YAML syntax errors,
 * duplicate keys and empty files come in the same form.
 */

const lines = (...text: string[]) => `${text.join('\n')}\n`

const HEAD = [
  'apiVersion: hybrid.dev/v1alpha1',
  'kind: Cluster',
  'metadata:',
  '  name: lab',
  'spec:',
  '  token:',
  '    file: lab.token',
]

describe('inventory problem positions', () => {
  it('points at bad values, unknown keys and the item that lacks a field, all at once and in order', () => {
    const text = lines(
      ...HEAD, //                        lines 1-7
      '  ssh:', //                       8
      '    hostKeyPolicy: stict', //     9: value at column 20
      '  workers:', //                   10
      '    - name: w1', //               11: the item starts at column 7
      '      adress: 10.0.0.1', //       12: unknown key at column 7
      '    - name: w2', //               13
      '      address: 10.0.0.300', //    14: value at column 16
    )
    assert.deepEqual(problemsOf(text).map(brief), [
      '9:20 spec.ssh.hostKeyPolicy: must be one of strict, accept-new, pinned, not "stict" (did you mean "strict"?)',
      '11:7 spec.workers[0].address: is required',
      '12:7 spec.workers[0].adress: unknown key "adress" (did you mean "address"?)',
      '14:16 spec.workers[1].address: "10.0.0.300" is not an IP address or host name',
    ])
  })

  it('formats each problem as FILE:LINE:COL field.path: sentence', () => {
    const text = lines(
      ...HEAD,
      '  workers:',
      '    - {name: w1, address: 10.0.0.1}',
      '    - {name: w2, address: 10.0.0.300}',
    )
    const [problem] = problemsOf(text, 'lab.yaml')
    assert.equal(
      formatProblem(problem),
      'lab.yaml:10:27 spec.workers[1].address: "10.0.0.300" is not an IP address or host name',
    )
  })

  it('points inside flow mappings and flow lists', () => {
    const text = lines(
      ...HEAD,
      '  ssh: {user: ubuntu, port: 0}', //                              8: 0 at column 29
      '  workers:',
      '    - name: w1',
      '      address: h1',
      '      taints: [a:NoSchedule, "b:Never"]', //                     12: second item (its quote) at column 30
      '      labels: {zone: a, "Bad Key": x}', //                       13: key at column 25
    )
    assert.deepEqual(problemsOf(text).map(brief), [
      '8:29 spec.ssh.port: must be from 1 to 65535, not 0',
      '12:30 spec.workers[0].taints[1]: "b:Never" is not a taint: the effect "Never" is not one of NoSchedule, PreferNoSchedule, NoExecute',
      '13:25 spec.workers[0].labels["Bad Key"]: "Bad Key" is not a Kubernetes label key: the name may hold only letters, digits, "-", "_" and "." and must start and end with a letter or digit',
    ])
  })

  it('points a missing field at the key of the mapping that lacks it', () => {
    const text = lines(
      '# a comment first',
      'apiVersion: hybrid.dev/v1alpha1',
      'kind: Cluster',
      'metadata:',
      '  labels: {}',
      'spec:',
      '  token: {file: t}',
    )
    assert.deepEqual(problemsOf(text).map(brief), [
      '4:1 metadata.name: is required',
      '5:3 metadata.labels: unknown key "labels"; the keys here are name',
    ])
  })

  it('points a field missing at the top level at the first key', () => {
    const text = lines('', '# no spec', 'apiVersion: hybrid.dev/v1alpha1', 'kind: Cluster', 'metadata: {name: lab}')
    assert.deepEqual(problemsOf(text).map(brief), ['3:1 spec: is required'])
  })

  it('points a cross-check at the second of two equal names, and an empty value at its key', () => {
    const text = lines(
      ...HEAD,
      '  workers:',
      '  - name: w1',
      '    address: a',
      '  - name: w1',
      '    address: b',
      '    hostKey:',
      '    ssh:',
      '      hostKeyPolicy: pinned',
    )
    assert.deepEqual(problemsOf(text).map(brief), [
      '11:11 spec.workers[1].name: "w1" is already the name of spec.workers[0]; worker names must be unique',
      '13:5 spec.workers[1].hostKey: is required because hostKeyPolicy is pinned (spec.workers[1].ssh.hostKeyPolicy): give the worker\'s public host key, "ssh-ed25519 AAAA…"',
    ])
  })

  it('reports duplicate keys, with the line of the first one, together with schema problems', () => {
    const text = lines(
      ...HEAD,
      '  concurrency: 0',
      '  network:',
      '    mode: tunnel',
      '    cni: auto',
      '    mode: direct',
    )
    assert.deepEqual(problemsOf(text).map(brief), [
      '8:16 spec.concurrency: must be from 1 to 256, not 0',
      '12:5 spec.network.mode: duplicate key "mode" (first given on line 10): a key may appear only once in a mapping',
    ])
  })

  it("reports YAML syntax errors at the parser's position, and nothing else", () => {
    assert.deepEqual(problemsOf(lines('apiVersion: hybrid.dev/v1alpha1', 'metadata:', '\tname: lab')).map(brief), [
      '3:1 : YAML syntax: tabs are not allowed as indentation',
    ])
    assert.deepEqual(problemsOf(lines('apiVersion: "hybrid.dev/v1alpha1', 'kind: Cluster')).map(brief), [
      '3:1 apiVersion: YAML syntax: missing closing "quote',
    ])
    assert.deepEqual(problemsOf(lines('metadata:', '  name: lab', ' kind: Cluster')).map(brief), [
      '3:1 : YAML syntax: all mapping items must start at the same column',
    ])
  })

  it('reports an unresolved tag as a problem at the tag', () => {
    const text = lines(...HEAD.slice(0, 6), '    file: !secret lab.token')
    assert.deepEqual(problemsOf(text).map(brief), ['7:11 spec.token.file: YAML syntax: unresolved tag: !secret'])
  })

  it('reports an empty file, a comment-only file, a second document and a top-level list', () => {
    const empty = '1:1 : the file is empty (`hybrid init` writes a starter inventory)'
    assert.deepEqual(problemsOf('').map(brief), [empty])
    assert.deepEqual(problemsOf('# nothing here\n\n').map(brief), [empty])
    assert.deepEqual(problemsOf(lines(...HEAD, '---', 'kind: Cluster')).map(brief), [
      '8:1 : a second YAML document begins here; an inventory file holds exactly one',
    ])
    assert.deepEqual(problemsOf(lines('- apiVersion: hybrid.dev/v1alpha1')).map(brief), [
      '1:1 : must be a mapping, not a list',
    ])
  })

  it('refuses an alias bomb and an alias to nothing in one sentence each', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]']
    for (const [prev, next] of [
      ['a', 'b'],
      ['b', 'c'],
      ['c', 'd'],
      ['d', 'e'],
      ['e', 'f'],
    ])
      bomb.push(`${next}: &${next} [${Array(9).fill(`*${prev}`).join(', ')}]`)
    assert.deepEqual(problemsOf(lines(...bomb)).map(brief), [
      '1:1 : YAML: Excessive alias count indicates a resource exhaustion attack',
    ])
    assert.deepEqual(problemsOf(lines(...HEAD, '  concurrency: *n')).map(brief), [
      '1:1 : YAML: Unresolved alias (the anchor must be set before the alias): n',
    ])
  })

  it('throws an InventoryError (exit 2) whose message is the problem, or "FILE has N problems:" with one line each', () => {
    assert.throws(
      () => parseInventory(lines(...HEAD.slice(0, 3), '  name: Lab', 'spec: {token: {file: t}}'), 'one.yaml'),
      (error: unknown) => {
        assert.ok(error instanceof InventoryError)
        assert.equal(error.exitCode, 2)
        assert.equal(error.message, 'one.yaml:4:9 metadata.name: "Lab" is not a DNS-1123 label: use lower case')
        assert.deepEqual(error.details, [])
        return true
      },
    )
    assert.throws(
      () =>
        parseInventory(
          lines('apiVersion: v2', 'kind: Cluster', 'metadata: {name: lab}', 'spec: {token: {}}'),
          'two.yaml',
        ),
      (error: unknown) => {
        assert.ok(error instanceof InventoryError)
        assert.equal(error.message, 'two.yaml has 2 problems:')
        assert.deepEqual(error.details, [
          'two.yaml:1:13 apiVersion: must be hybrid.dev/v1alpha1, not "v2"',
          'two.yaml:4:8 spec.token: needs exactly one of file (a token file, created 0600 with a random token if missing) or env (an environment variable that holds the token)',
        ])
        assert.equal(error.problems.length, 2)
        return true
      },
    )
  })

  it('formats a document-level problem with "(document)" as its path', () => {
    const [problem] = problemsOf('')
    assert.equal(
      formatProblem(problem),
      'test.yaml:1:1 (document): the file is empty (`hybrid init` writes a starter inventory)',
    )
  })
})
