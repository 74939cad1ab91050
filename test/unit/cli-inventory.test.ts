import {strict as assert} from 'node:assert'
import {execFile} from 'node:child_process'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

/**
 * `hybrid inventory validate` and `hybrid init` end to end: the real bin/run.js as a child process
 * (it loads the compiled commands from dist/), in a temp directory, asserting what a user sees:
 * stdout, stderr and the exit code.
 */

const RUN = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))

interface Outcome {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

function hybrid(cwd: string, ...args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [RUN, ...args],
      {cwd, env: {...process.env, HYBRID_STATE_DIR: join(cwd, '.state'), NO_COLOR: '1'}},
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0
        resolve({code, stdout, stderr})
      },
    )
  })
}

/** hybrid's own lines on stderr (oclif may add warnings about other commands while they are being built). */
const ownLines = (stderr: string) =>
  stderr.split('\n').filter((line) => line.startsWith('hybrid: ') || line.startsWith('  '))

function assertNoStackTrace(output: Outcome): void {
  assert.doesNotMatch(output.stderr, /^\s+at .+:\d+:\d+\)?$/m, `a stack trace reached the user:\n${output.stderr}`)
}

const BROKEN = `apiVersion: hybrid.dev/v1alpha1
kind: Cluster
metadata:
  name: Lab
spec:
  token:
    file: lab.token
  ssh:
    hostKeyPolicy: stict
  workers:
    - name: w1
      adress: 10.0.0.1
    - name: w2
      address: 10.0.0.300
`

const GOOD = `apiVersion: hybrid.dev/v1alpha1
kind: Cluster
metadata: {name: lab}
spec:
  token: {file: lab.token}
  workers:
    - {name: w1, address: 10.213.0.11}
    - {name: w2, address: 10.213.0.12}
`

describe('hybrid inventory validate and hybrid init (bin/run.js)', function () {
  this.timeout(120_000)
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-cli-inventory-'))
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('prints every mistake with its position and exits 2, with no stack trace', async () => {
    await writeFile(join(dir, 'lab.yaml'), BROKEN)
    const output = await hybrid(dir, 'inventory', 'validate', 'lab.yaml')
    assert.equal(output.code, 2)
    assert.equal(output.stdout, '')
    assert.deepEqual(ownLines(output.stderr), [
      'hybrid: lab.yaml has 5 problems:',
      '  lab.yaml:4:9 metadata.name: "Lab" is not a DNS-1123 label: use lower case',
      '  lab.yaml:9:20 spec.ssh.hostKeyPolicy: must be one of strict, accept-new, pinned, not "stict" (did you mean "strict"?)',
      '  lab.yaml:11:7 spec.workers[0].address: is required',
      '  lab.yaml:12:7 spec.workers[0].adress: unknown key "adress" (did you mean "address"?)',
      '  lab.yaml:14:16 spec.workers[1].address: "10.0.0.300" is not an IP address or host name',
    ])
    assertNoStackTrace(output)
  })

  it("workers add refuses a worker named as the sandbox's own Node, at its position, exit 2", async () => {
    await writeFile(join(dir, 'lab.yaml'), GOOD.replace('{name: w2,', '{name: lab-server,'))
    const output = await hybrid(dir, 'workers', 'add', 'lab-server', '--inventory', 'lab.yaml')
    assert.equal(output.code, 2)
    assert.deepEqual(ownLines(output.stderr), [
      `hybrid: ${join(dir, 'lab.yaml')}:8:14 spec.workers[1].name: "lab-server" is the name of the sandbox's own Node (metadata.name + "-server"), which hybrid would then take for this worker's; choose another name`,
    ])
    assertNoStackTrace(output)
  })

  it('prints a YAML syntax error in the same form', async () => {
    await writeFile(join(dir, 'bad.yaml'), GOOD.replace('10.213.0.12}', '10.213.0.12'))
    const output = await hybrid(dir, 'inventory', 'validate', 'bad.yaml')
    assert.equal(output.code, 2)
    assert.deepEqual(ownLines(output.stderr), [
      'hybrid: bad.yaml:9:1 spec.workers[1].address: YAML syntax: flow map in block collection must be sufficiently indented and end with a }',
    ])
    assertNoStackTrace(output)
  })

  it('says in one sentence that the file does not exist', async () => {
    const output = await hybrid(dir, 'inventory', 'validate', 'nope.yaml')
    assert.equal(output.code, 2)
    assert.deepEqual(ownLines(output.stderr), [
      'hybrid: nope.yaml: no such file (`hybrid init` writes a starter inventory)',
    ])
    assertNoStackTrace(output)
  })

  it('says a valid file is valid, with its cluster and workers', async () => {
    await writeFile(join(dir, 'lab.yaml'), GOOD)
    const output = await hybrid(dir, 'inventory', 'validate', 'lab.yaml')
    assert.equal(output.code, 0, output.stderr)
    assert.equal(output.stdout, 'lab.yaml is valid: cluster lab, 2 workers\n')
  })

  it('--json prints only the JSON document: the problems with their positions, exit 2', async () => {
    await writeFile(join(dir, 'lab.yaml'), BROKEN)
    const output = await hybrid(dir, 'inventory', 'validate', 'lab.yaml', '--json')
    assert.equal(output.code, 2)
    const document = JSON.parse(output.stdout) as {
      valid: boolean
      file: string
      problems: {file: string; line: number; column: number; path: string; message: string}[]
      cluster?: unknown
    }
    assert.equal(document.valid, false)
    assert.equal(document.file, 'lab.yaml')
    assert.equal(document.cluster, undefined)
    assert.equal(document.problems.length, 5)
    assert.deepEqual(document.problems[4], {
      file: 'lab.yaml',
      line: 14,
      column: 16,
      path: 'spec.workers[1].address',
      message: '"10.0.0.300" is not an IP address or host name',
    })
    assert.deepEqual(ownLines(output.stderr), [], 'with --json the problems are in the document, not on stderr')
  })

  it('--json on a valid file gives the resolved cluster', async () => {
    await writeFile(join(dir, 'lab.yaml'), GOOD)
    const output = await hybrid(dir, 'inventory', 'validate', 'lab.yaml', '--json')
    assert.equal(output.code, 0, output.stderr)
    const document = JSON.parse(output.stdout) as {
      valid: boolean
      problems: unknown[]
      cluster: {name: string; file: string; token: unknown; workers: {name: string}[]}
    }
    assert.equal(document.valid, true)
    assert.deepEqual(document.problems, [])
    assert.equal(document.cluster.name, 'lab')
    assert.equal(document.cluster.file, join(dir, 'lab.yaml'))
    assert.deepEqual(document.cluster.token, {kind: 'file', file: join(dir, 'lab.token')})
    assert.deepEqual(
      document.cluster.workers.map((w) => w.name),
      ['w1', 'w2'],
    )
  })

  it('--json on a missing file still prints one document, exit 2', async () => {
    const output = await hybrid(dir, 'inventory', 'validate', 'nope.yaml', '--json')
    assert.equal(output.code, 2)
    assert.deepEqual(JSON.parse(output.stdout), {
      valid: false,
      file: 'nope.yaml',
      problems: [
        {
          file: 'nope.yaml',
          line: 0,
          column: 0,
          path: '',
          message: 'no such file (`hybrid init` writes a starter inventory)',
        },
      ],
    })
  })

  it('up --json on a missing inventory: exit 2, one JSON error with its stable code', async () => {
    const output = await hybrid(dir, 'up', '--inventory', 'missing.yaml', '--json')
    assert.equal(output.code, 2)
    const document = JSON.parse(output.stdout) as {error: {code: string; message: string; exitCode: number}}
    assert.equal(document.error.code, 'INVENTORY_NOT_FOUND')
    assert.equal(document.error.exitCode, 2)
    assert.match(document.error.message, /missing\.yaml: no such file/)
    assertNoStackTrace(output)
  })

  it('up --json on an invalid inventory: the code says so, and the problems come with their positions', async () => {
    await writeFile(join(dir, 'lab.yaml'), BROKEN)
    const output = await hybrid(dir, 'up', '--inventory', 'lab.yaml', '--json')
    assert.equal(output.code, 2)
    const document = JSON.parse(output.stdout) as {error: {code: string; problems: {line: number}[]}}
    assert.equal(document.error.code, 'INVENTORY_INVALID')
    assert.equal(document.error.problems.length, 5)
  })

  it('a bad flag under --json is a JSON error too (code USAGE, exit 2)', async () => {
    const output = await hybrid(dir, 'status', '--no-such-flag', '--json')
    assert.equal(output.code, 2)
    assert.equal((JSON.parse(output.stdout) as {error: {code: string}}).error.code, 'USAGE')
  })

  it('init writes ./hybrid.yaml, which then validates, and leaves no temp file', async () => {
    const init = await hybrid(dir, 'init')
    assert.equal(init.code, 0, init.stderr)
    assert.match(init.stdout, /^wrote hybrid\.yaml: cluster hybrid/)
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f !== '.state'),
      ['hybrid.yaml'],
    )
    const validate = await hybrid(dir, 'inventory', 'validate', 'hybrid.yaml')
    assert.equal(validate.code, 0, validate.stderr)
    assert.equal(validate.stdout, 'hybrid.yaml is valid: cluster hybrid, 0 workers\n')
  })

  it('init FILE --name NAME, and the name from the file name otherwise', async () => {
    const named = await hybrid(dir, 'init', 'clusters/edge.yaml', '--name', 'edge-1')
    assert.equal(named.code, 0, named.stderr)
    assert.match(await readFile(join(dir, 'clusters/edge.yaml'), 'utf8'), /^ {2}name: edge-1 /m)
    const unnamed = await hybrid(dir, 'init', 'staging.yaml')
    assert.equal(unnamed.code, 0, unnamed.stderr)
    assert.match(await readFile(join(dir, 'staging.yaml'), 'utf8'), /^ {2}name: staging /m)
  })

  it('init refuses to overwrite an existing file without --force (exit 2), and overwrites with it', async () => {
    const file = join(dir, 'hybrid.yaml')
    await writeFile(file, 'mine\n')
    const refused = await hybrid(dir, 'init')
    assert.equal(refused.code, 2)
    assert.deepEqual(ownLines(refused.stderr), ['hybrid: hybrid.yaml already exists; use --force to overwrite it'])
    assert.equal(await readFile(file, 'utf8'), 'mine\n')
    const forced = await hybrid(dir, 'init', '--force')
    assert.equal(forced.code, 0, forced.stderr)
    assert.match(await readFile(file, 'utf8'), /^kind: Cluster$/m)
  })

  it('init refuses a cluster name that is not a DNS-1123 label (exit 2)', async () => {
    const output = await hybrid(dir, 'init', '--name', 'My_Cluster')
    assert.equal(output.code, 2)
    assert.deepEqual(ownLines(output.stderr), [
      'hybrid: --name "My_Cluster" is not a DNS-1123 label: only lower-case letters, digits and "-", starting and ending with a letter or digit',
    ])
    assert.deepEqual(await readdir(dir), [])
  })
})
