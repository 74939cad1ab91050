import {strict as assert} from 'node:assert'
import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {
  clearSecrets,
  isSecretKey,
  REDACTED,
  redactLine,
  redactString,
  redactValue,
  registerSecret,
} from '../../src/log/redact.js'
import {requireTool} from '../helpers/requires.js'

const child = fileURLToPath(new URL('plan-child.js', import.meta.url))

describe('redaction', () => {
  afterEach(() => clearSecrets())

  describe('by value', () => {
    it('replaces a registered secret everywhere in a string, and its base64 form', () => {
      const secret = 'a81f0c3e9d2b47e6'
      assert.equal(registerSecret(secret), true)
      assert.equal(redactString(`token=${secret}; again:${secret}!`), `token=${REDACTED}; again:${REDACTED}!`)
      assert.equal(redactString(`Basic ${Buffer.from(secret).toString('base64')}`), `Basic ${REDACTED}`)
    })

    it('does not register values so short they would blank out ordinary words', () => {
      assert.equal(registerSecret('abc'), false)
      assert.equal(registerSecret(''), false)
      assert.equal(redactString('abc def'), 'abc def')
    })

    it('recognises k3s tokens, PEM private keys, kubeconfig key data and bearer tokens by their shape', () => {
      const k10 = `K10${'0f'.repeat(32)}::server:5e1f2a9c0b7d4e3f`
      assert.equal(redactString(`joining with ${k10} now`), `joining with ${REDACTED} now`)
      assert.equal(redactString('token is server:9c2f41be77a0d13e'), `token is server:${REDACTED}`)
      const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1\nabc\n-----END RSA PRIVATE KEY-----'
      assert.equal(
        redactString(`key:\n${pem}\nend`),
        `key:\n-----BEGIN RSA PRIVATE KEY----- ${REDACTED} -----END RSA PRIVATE KEY-----\nend`,
      )
      assert.ok(!redactString('-----BEGIN PRIVATE KEY-----\nMIIEv (cut off').includes('MIIEv'))
      const b64key = Buffer.from(
        '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIEr\n-----END EC PRIVATE KEY-----\n',
      ).toString('base64')
      assert.equal(redactString(`    client-key-data: ${b64key}\n`), `    client-key-data: ${REDACTED}\n`)
      assert.equal(redactString(`pasted ${b64key}`), `pasted ${REDACTED}`)
      assert.equal(redactString('Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.abc'), `Authorization: Bearer ${REDACTED}`)
      assert.equal(
        redactString('users:\n- user:\n    token: 7f3c9a1e5b2d8f4a6c0e'),
        `users:\n- user:\n    token: ${REDACTED}`,
      )
    })

    it('leaves look-alikes alone: URLs, stack frames, paths, short words', () => {
      for (const text of [
        'dial https://server:6443/readyz',
        'at process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
        'token: file missing',
        'spec.token.file: ~/.config/hybrid/lab.token',
        'tokenFile: /etc/rancher/k3s/token',
        '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----',
        'server:6443',
      ])
        assert.equal(redactString(text), text)
    })
  })

  describe('by field name', () => {
    it('knows secret names in any spelling and not paths to them', () => {
      for (const key of [
        'token',
        'password',
        'privateKey',
        'private_key',
        'passphrase',
        'kubeconfig',
        'client-key-data',
        'clusterToken',
        'sudoPassword',
        'AUTHORIZATION',
      ])
        assert.ok(isSecretKey(key), key)
      for (const key of ['tokenFile', 'host', 'identityFile', 'knownHosts', 'message'])
        assert.ok(!isSecretKey(key), key)
    })

    it('redacts secret fields at any depth, searching objects under a secret name instead of dropping them', () => {
      const input = {
        msg: 'hello',
        token: 'abc',
        a: {b: {c: {password: 'hunter2', list: [{privateKey: 'PEM'}]}}},
        spec: {token: {file: '~/.config/hybrid/lab.token', env: null}},
        kubeconfig: 'apiVersion: v1\n',
        users: [{user: {'client-key-data': 'LS0t', 'client-certificate-data': 'LS0tLS1CRUdJTiBDRVJU'}}],
        port: 22,
      }
      assert.deepEqual(redactValue(input), {
        msg: 'hello',
        token: REDACTED,
        a: {b: {c: {password: REDACTED, list: [{privateKey: REDACTED}]}}},
        spec: {token: {file: '~/.config/hybrid/lab.token', env: null}},
        kubeconfig: REDACTED,
        users: [{user: {'client-key-data': REDACTED, 'client-certificate-data': 'LS0tLS1CRUdJTiBDRVJU'}}],
        port: 22,
      })
    })

    it('redacts a serialized log line and leaves a clean one byte for byte', () => {
      registerSecret('0123456789abcdef')
      const clean = '{"level":30,"time":1,"msg":"connected","host":"w1"}\n'
      assert.equal(redactLine(clean), clean)
      const dirty =
        '{"level":50,"err":{"message":"no: 0123456789abcdef","stack":"Error: no: 0123456789abcdef\\n    at x"},"sudoPassword":"pw123456"}\n'
      assert.equal(
        redactLine(dirty),
        `{"level":50,"err":{"message":"no: ${REDACTED}","stack":"Error: no: ${REDACTED}\\n    at x"},"sudoPassword":"${REDACTED}"}\n`,
      )
    })
  })

  describe('in every sink of a real process', function () {
    this.timeout(60_000)
    let dir: string
    let token: string

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'hybrid-redact-'))
      // A plain random secret, as a token file may hold: found only because it was registered.
      token = randomBytes(20).toString('hex')
      await writeFile(join(dir, 'token'), `${token}\n`, {mode: 0o600})
    })
    afterEach(async () => {
      await rm(dir, {recursive: true, force: true})
    })

    const env = () => ({
      ...process.env,
      HYBRID_STATE_DIR: join(dir, 'state'),
      TOKEN_FILE: join(dir, 'token'),
      NO_COLOR: '1',
    })
    const run = (file: string, args: string[], extraEnv: Record<string, string> = {}) =>
      new Promise<{code: number | null; stdout: string; stderr: string}>((resolve) => {
        execFile(file, args, {env: {...env(), ...extraEnv}}, (error, stdout, stderr) =>
          resolve({code: error ? (error.code as number) : 0, stdout, stderr}),
        )
      })

    /** What must never show up, and what must (so the test cannot pass by writing nothing). */
    function assertClean(sink: string, text: string, mustSay: string[]): void {
      for (const leak of [
        token,
        '5e1f2a9c',
        'hunter2-hunter2',
        'b3BlbnNzaC1rZXktdjEAAAAABG5vbmU',
        'LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUVy',
        '0123456789abcdef',
      ]) {
        assert.ok(!text.includes(leak), `${sink} leaks ${leak}:\n${text}`)
      }
      for (const said of mustSay)
        assert.ok(text.includes(said), `${sink} does not say ${JSON.stringify(said)}:\n${text}`)
    }

    async function logFile(): Promise<string> {
      const file = join(dir, 'state', 'logs', 'hybrid.log')
      assert.equal((await stat(file)).mode & 0o777, 0o600)
      assert.equal((await stat(join(dir, 'state', 'logs'))).mode & 0o777, 0o700)
      return readFile(file, 'utf8')
    }

    const failures = ['ssh auth failed for w2 with token [redacted]', 'the control plane refused the token [redacted]']

    it('--json: stdout events, JSON lines on stderr, and the log file (with stacks) hold no secret', async () => {
      const {code, stdout, stderr} = await run(process.execPath, [child, 'redaction', 'json'])
      assert.equal(code, 1, stderr)
      assertClean('stdout', stdout, failures)
      for (const line of stdout.trimEnd().split('\n'))
        assert.doesNotThrow(() => JSON.parse(line), `stdout line is not JSON: ${line}`)
      assertClean('stderr', stderr, [...failures, 'server said [redacted] is the join token'])
      const file = await logFile()
      assertClean('log file', file, [
        ...failures,
        '"stack":"HybridError: the control plane refused the token [redacted]',
      ])
    })

    it('pretty on a pipe: stderr and the log file hold no secret', async () => {
      const {code, stdout, stderr} = await run(process.execPath, [child, 'redaction', 'pretty'])
      assert.equal(code, 1, stderr)
      assert.equal(stdout, '')
      assertClean('stderr', stderr, [...failures, 'token: "[redacted]"', 'w2    failed'])
      assertClean('log file', await logFile(), failures)
    })

    it('pretty on a terminal, at debug level (stacks shown): the terminal shows no secret', async function () {
      requireTool(this, 'script', 'bsdutils')
      const command = `stty cols 200 rows 50; exec ${process.execPath} ${child} redaction pretty`
      const {code, stdout} = await run('script', ['-qec', command, '/dev/null'], {LOG_LEVEL: 'debug'})
      assert.equal(code, 1, stdout)
      assertClean('terminal', stdout, [...failures, 'HybridError: the control plane refused the token [redacted]'])
      assertClean('log file', await logFile(), failures)
    })
  })
})
