import {strict as assert} from 'node:assert'
import {readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {Ajv} from 'ajv'
import {parse} from 'yaml'

import {inventoryJsonSchema, inventoryJsonSchemaText} from '../../src/inventory/json-schema.js'
import {installedSchemaPath, starterInventory} from '../../src/inventory/starter.js'
import {inventoryOf, problemsOf} from './inventory-fixtures.js'

/** The files in inventory/ (schema.json, lab.yaml, example.yaml) and the starter of `hybrid init`. */

// This test runs as dist/test/unit/*.js: the repository is three levels up.
const repo = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url))

describe('inventory/schema.json', () => {
  it('is what the schema code generates now', async () => {
    const committed = await readFile(repo('inventory/schema.json'), 'utf8')
    assert.ok(
      committed === inventoryJsonSchemaText(),
      'inventory/schema.json is stale: run `npm run build:ts && npm run schema` and commit the result',
    )
  })

  it('describes every custom format and gives editors a pattern where one says the rule', () => {
    const text = inventoryJsonSchemaText()
    const name = (
      inventoryJsonSchema().properties as Record<string, {properties: Record<string, Record<string, unknown>>}>
    ).metadata.properties.name
    assert.equal(name.format, 'dns1123-label')
    assert.match(String(name.description), /DNS-1123 label/)
    assert.equal(name.pattern, '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')
    for (const format of [
      'host',
      'ip',
      'ipv4',
      'label-key',
      'label-value',
      'taint',
      'ssh-public-key',
      'ssh-proxy',
      'uri',
    ])
      assert.ok(text.includes(`"format": "${format}"`), format)
  })

  it("works in a validator that knows none of hybrid's formats (as editors are)", async () => {
    const ajv = new Ajv({strict: false, validateFormats: false, allErrors: true})
    const validate = ajv.compile(inventoryJsonSchema())
    const lab = parse(await readFile(repo('inventory/lab.yaml'), 'utf8')) as Record<string, unknown>
    assert.equal(validate(lab), true, JSON.stringify(validate.errors))
    const typo = {...lab, metdata: {}}
    assert.equal(validate(typo), false)
    assert.ok(
      validate.errors!.some(
        (e) =>
          e.keyword === 'additionalProperties' &&
          (e.params as {additionalProperty: string}).additionalProperty === 'metdata',
      ),
    )
    assert.equal(validate({...lab, metadata: {name: 'Lab'}}), false, 'the dns1123 pattern applies without the format')
  })
})

describe('inventory/lab.yaml and inventory/example.yaml', () => {
  it('lab.yaml is the one-machine lab: cluster lab, tunnel mode, workers w1, w2 and w3 on the lab bridge', async () => {
    const file = repo('inventory/lab.yaml')
    const text = await readFile(file, 'utf8')
    assert.match(text, /^# yaml-language-server: \$schema=\.\/schema\.json$/m)
    const lab = inventoryOf(text, file)
    const state = (path: string) => join(homedir(), '.local/state/hybrid/lab', path)
    assert.equal(lab.name, 'lab')
    assert.equal(lab.controlPlane.dataDir, '/var/lib/hybrid/lab')
    assert.deepEqual(lab.token, {kind: 'file', file: state('token')})
    assert.equal(lab.k3s.binary, state('bin/k3s'))
    assert.equal(lab.network.mode, 'tunnel')
    assert.deepEqual(
      lab.workers.map((w) => [
        w.name,
        w.address,
        w.ssh.user,
        w.ssh.identityFile,
        w.ssh.knownHosts,
        w.ssh.hostKeyPolicy,
      ]),
      [
        ['w1', '10.213.0.11', 'root', state('ssh/id_ed25519'), state('ssh/known_hosts'), 'strict'],
        ['w2', '10.213.0.12', 'root', state('ssh/id_ed25519'), state('ssh/known_hosts'), 'strict'],
        ['w3', '10.213.0.13', 'root', state('ssh/id_ed25519'), state('ssh/known_hosts'), 'strict'],
      ],
    )
  })

  it('example.yaml validates: sandbox control plane, three workers, a bastion', async () => {
    const file = repo('inventory/example.yaml')
    const text = await readFile(file, 'utf8')
    assert.match(text, /^# yaml-language-server: \$schema=\.\/schema\.json$/m)
    const example = inventoryOf(text, file)
    assert.equal(example.workers.length, 3)
    for (const worker of example.workers) assert.equal(worker.ssh.bastion?.address, 'bastion.example.com')
    assert.deepEqual(
      example.workers.map((w) => w.ssh.hostKeyPolicy),
      ['accept-new', 'accept-new', 'pinned'],
    )
  })
})

describe('the starter inventory of hybrid init', () => {
  for (const name of ['hybrid', 'lab', 'a', 'x'.repeat(63)]) {
    it(`validates as written for cluster "${name.length > 10 ? `${name.slice(0, 6)}…` : name}", with no workers`, () => {
      const inventory = inventoryOf(starterInventory({name}), '/home/u/hybrid.yaml')
      assert.equal(inventory.name, name)
      assert.deepEqual(inventory.workers, [])
      assert.equal(inventory.controlPlane.dataDir, `/var/lib/hybrid/${name}`)
    })
  }

  it('shows every section of the format, and its commented worker validates once uncommented', () => {
    const text = starterInventory({name: 'lab'})
    for (const key of ['k3s:', 'token:', 'controlPlane:', 'network:', 'ssh:', 'concurrency:', 'workers:'])
      assert.ok(text.includes(`  ${key}`), key)
    const uncommented = text.replace('workers: []', 'workers:').replace(/^ {2}# {2}/gm, '    ')
    assert.deepEqual(problemsOf(uncommented), [])
    assert.equal(inventoryOf(uncommented).workers[0].address, '192.0.2.10')
  })

  it('names the installed schema.json for editors', () => {
    const schema = installedSchemaPath()
    assert.equal(schema, repo('inventory/schema.json'))
    assert.ok(starterInventory({name: 'lab', schema}).startsWith(`# yaml-language-server: $schema=${schema}\n`))
  })
})
