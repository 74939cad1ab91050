import {strict as assert} from 'node:assert'
import {execFile} from 'node:child_process'
import {chmod, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {homedir, tmpdir} from 'node:os'
import {join, relative} from 'node:path'
import {promisify} from 'node:util'

import {InventoryError} from '../../src/inventory/errors.js'
import {checkInventoryFile, loadInventory} from '../../src/inventory/load.js'
import {isRoot} from '../helpers/requires.js'
import {ED25519_KEY, inventoryOf} from './inventory-fixtures.js'

/** Defaults from the schema, `~` and relative paths, ssh merged per worker, and reading files. */

const run = promisify(execFile)
const lines = (...text: string[]) => `${text.join('\n')}\n`
const HEAD = ['apiVersion: hybrid.dev/v1alpha1', 'kind: Cluster', 'metadata: {name: lab}']

describe('inventory defaults and resolution', () => {
  it('fills in every default of docs/architecture.md, "The inventory"', () => {
    const inventory = inventoryOf(
      lines(...HEAD, 'spec:', '  token: {env: HYBRID_TOKEN}', '  workers: [{name: w1, address: 10.213.0.11}]'),
      '/srv/inv/lab.yaml',
    )
    assert.deepEqual(inventory, {
      file: '/srv/inv/lab.yaml',
      name: 'lab',
      k3s: {version: 'v1.34.1+k3s1', mirror: null, image: 'docker.io/rancher/k3s', distribute: 'coordinator'},
      token: {kind: 'env', env: 'HYBRID_TOKEN'},
      controlPlane: {
        dataDir: '/var/lib/hybrid/lab',
        agent: true,
        workarounds: 'auto',
        advertiseAddress: '100.64.255.1',
        apiPort: 6443,
        extraArgs: [],
      },
      network: {mode: 'tunnel', cni: 'auto', manageSshd: true},
      concurrency: 10,
      images: {archives: [], flannelRegistry: 'ghcr.io'},
      upgrade: {maxUnavailable: 1, drainTimeoutSeconds: 120},
      workers: [
        {
          name: 'w1',
          address: '10.213.0.11',
          ssh: {
            user: 'root',
            port: 22,
            identityFile: join(homedir(), '.ssh/id_ed25519'),
            knownHosts: join(homedir(), '.ssh/known_hosts'),
            hostKeyPolicy: 'strict',
            sudo: 'auto',
            bastion: null,
            proxy: null,
            connectTimeoutSeconds: 15,
            commandTimeoutSeconds: 120,
            uploadTimeoutSeconds: 1800,
            outputLimitBytes: 16777216,
          },
          labels: {},
          taints: [],
          hostKey: null,
          service: 'auto',
          adopt: false,
          agent: {config: {}, environment: {}, files: []},
        },
      ],
    })
  })

  it("takes relative paths from the inventory file's directory and expands ~", () => {
    const text = lines(
      ...HEAD,
      'spec:',
      '  k3s: {binary: ./bin/k3s}',
      '  token: {file: secrets/lab.token}',
      '  controlPlane: {dataDir: data}',
      '  ssh: {identityFile: ~/keys/id, knownHosts: ../known_hosts, bastion: {address: j, identityFile: jump.key}}',
      '  workers: [{name: w1, address: a, ssh: {identityFile: /abs/key}}]',
    )
    const inventory = inventoryOf(text, '/srv/inv/lab.yaml')
    assert.equal(inventory.k3s.binary, '/srv/inv/bin/k3s')
    assert.deepEqual(inventory.token, {kind: 'file', file: '/srv/inv/secrets/lab.token'})
    assert.equal(inventory.controlPlane.dataDir, '/srv/inv/data')
    const [w1] = inventory.workers
    assert.equal(w1.ssh.identityFile, '/abs/key')
    assert.equal(w1.ssh.knownHosts, '/srv/known_hosts')
    assert.deepEqual(w1.ssh.bastion, {address: 'j', port: 22, user: 'root', identityFile: '/srv/inv/jump.key'})
  })

  it('takes relative paths from the working directory when the file name is relative', () => {
    const inventory = inventoryOf(lines(...HEAD, 'spec: {token: {file: t.token}}'), 'sub/lab.yaml')
    assert.equal(inventory.file, join(process.cwd(), 'sub/lab.yaml'))
    assert.deepEqual(inventory.token, {kind: 'file', file: join(process.cwd(), 'sub/t.token')})
  })

  it("merges each worker's ssh over spec.ssh, key by key, and completes the bastion from the worker", () => {
    const text = lines(
      ...HEAD,
      'spec:',
      '  token: {file: /t}',
      '  ssh: {user: ubuntu, port: 2222, identityFile: null, hostKeyPolicy: accept-new, bastion: {address: jump.example.com}}',
      '  workers:',
      '    - {name: a, address: 10.0.0.1}',
      `    - {name: b, address: 10.0.0.2, ssh: {user: admin, hostKeyPolicy: pinned, bastion: null}, hostKey: "${ED25519_KEY}"}`,
      '    - {name: c, address: 10.0.0.3, ssh: {identityFile: /k, bastion: {address: j2, port: 2200, user: jump}}}',
    )
    const [a, b, c] = inventoryOf(text, '/i/lab.yaml').workers
    assert.deepEqual(
      [a.ssh.user, a.ssh.port, a.ssh.identityFile, a.ssh.hostKeyPolicy],
      ['ubuntu', 2222, null, 'accept-new'],
    )
    assert.deepEqual(a.ssh.bastion, {address: 'jump.example.com', port: 22, user: 'ubuntu', identityFile: null})
    assert.deepEqual(
      [b.ssh.user, b.ssh.port, b.ssh.hostKeyPolicy, b.ssh.bastion, b.hostKey],
      ['admin', 2222, 'pinned', null, ED25519_KEY],
    )
    assert.deepEqual(c.ssh.bastion, {address: 'j2', port: 2200, user: 'jump', identityFile: '/k'})
  })

  it('keeps labels, taints, workaround lists and extra args as written', () => {
    const text = lines(
      ...HEAD,
      'spec:',
      '  token: {file: /t}',
      '  controlPlane: {workarounds: [procsys, kmsg], extraArgs: [--debug, "--v=2"], agent: false}',
      '  workers: [{name: w, address: h, labels: {zone: a, example.com/x: ""}, taints: ["a=b:NoSchedule"], service: none}]',
    )
    const inventory = inventoryOf(text, '/i/lab.yaml')
    assert.deepEqual(inventory.controlPlane.workarounds, ['procsys', 'kmsg'])
    assert.deepEqual(inventory.controlPlane.extraArgs, ['--debug', '--v=2'])
    assert.equal(inventory.controlPlane.agent, false)
    assert.deepEqual(inventory.workers[0].labels, {zone: 'a', 'example.com/x': ''})
    assert.deepEqual(inventory.workers[0].taints, ['a=b:NoSchedule'])
    assert.equal(inventory.workers[0].service, 'none')
  })
})

/**
 * checkInventoryFile's problems as an ordinary user would get them: root reads even a mode-000 file,
 * so under root (as in CI) the check runs in a child process as nobody.
 */
async function problemsAsOrdinaryUser(file: string): Promise<unknown> {
  if (!isRoot()) {
    const result = await checkInventoryFile(file)
    return result.ok ? [] : result.problems
  }
  const load = new URL('../../src/inventory/load.js', import.meta.url).href
  const script = `const {checkInventoryFile} = await import(${JSON.stringify(load)}); const r = await checkInventoryFile(process.argv[1]); process.stdout.write(JSON.stringify(r.ok ? [] : r.problems))`
  const {stdout} = await run(process.execPath, ['--input-type=module', '-e', script, file], {uid: 65534, gid: 65534})
  return JSON.parse(stdout)
}

describe('reading inventory files', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-inventory-'))
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('loads a file and resolves its paths against its directory', async () => {
    const file = join(dir, 'lab.yaml')
    await writeFile(file, lines(...HEAD, 'spec: {token: {file: lab.token}}'))
    const inventory = await loadInventory(file)
    assert.equal(inventory.file, file)
    assert.deepEqual(inventory.token, {kind: 'file', file: join(dir, 'lab.token')})
    assert.deepEqual(inventory.workers, [])
  })

  it('says in one sentence that a file does not exist (exit 2)', async () => {
    const file = join(dir, 'missing.yaml')
    await assert.rejects(loadInventory(file), (error: unknown) => {
      assert.ok(error instanceof InventoryError)
      assert.equal(error.exitCode, 2)
      assert.equal(error.message, `${file}: no such file (\`hybrid init\` writes a starter inventory)`)
      assert.deepEqual(error.problems, [
        {file, line: 0, column: 0, path: '', message: 'no such file (`hybrid init` writes a starter inventory)'},
      ])
      return true
    })
  })

  it('says that a directory is not an inventory file', async () => {
    const result = await checkInventoryFile(dir)
    assert.equal(result.ok, false)
    assert.equal(!result.ok && result.problems[0].message, 'is a directory, not an inventory file')
  })

  it('says that an unreadable file cannot be read', async () => {
    const file = join(dir, 'secret.yaml')
    await writeFile(file, 'a: 1\n')
    await chmod(file, 0)
    await chmod(dir, 0o755)
    assert.deepEqual(await problemsAsOrdinaryUser(file), [
      {file, line: 0, column: 0, path: '', message: 'cannot be read: permission denied'},
    ])
  })

  it('names the file as given in every problem', async () => {
    await mkdir(join(dir, 'sub'))
    const file = relative(process.cwd(), join(dir, 'sub', 'bad.yaml'))
    await writeFile(file, lines(...HEAD, 'spec: {token: {file: t}, concurrency: 0}'))
    const result = await checkInventoryFile(file)
    assert.equal(result.ok, false)
    assert.deepEqual(!result.ok && result.problems, [
      {file, line: 4, column: 39, path: 'spec.concurrency', message: 'must be from 1 to 256, not 0'},
    ])
  })
})
