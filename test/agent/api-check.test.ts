import {strict as assert} from 'node:assert'
import {type AddressInfo, createServer, type Socket} from 'node:net'

import {ApiCheckError, checkApiFromWorker, parseK3sToken} from '../../src/agent/api-check.js'
import type {Host, RunOptions} from '../../src/remote/host.js'
import {freePort} from '../helpers/free-port.js'
import {requireLab} from '../helpers/lab.js'
import {labWorker} from '../remote/lab-workers.js'
import {type AgentLab, createAgentLab, type LabServer} from './agent-lab.js'

/**
 * The API checked from a real lab host against the k3s stand-in's server (a test fixture, not k3s) on
 * the lab's bridge: every outcome a user can meet, each one sentence naming the worker.
 */
describe('the API checked from a worker (lab, k3s stand-in)', function () {
  this.timeout(90_000)
  let fixture: AgentLab
  let server: LabServer
  let other: LabServer
  let host: Host
  /** Every command the check ran on the worker: argv and standard input. */
  let sent: {argv: readonly string[]; stdin: string}[]

  before(async function () {
    requireLab(this)
    fixture = await createAgentLab({servers: 2})
    ;[server, other] = fixture.servers
    host = recording(await fixture.connections.host(labWorker(fixture.lab, fixture.w1)))
  })
  beforeEach(() => (sent = []))
  after(() => fixture?.destroy())

  /** `inner` with every run recorded; `rewrite` may change the argv (a worker without curl). */
  function recording(inner: Host, rewrite: (argv: readonly string[]) => readonly string[] = (a) => a): Host {
    return new Proxy(inner, {
      get(target, property) {
        if (property === 'run')
          return (argv: readonly string[], options: RunOptions = {}) => {
            sent.push({argv, stdin: Buffer.from(options.stdin ?? '').toString()})
            return target.run(rewrite(argv), options)
          }
        const value: unknown = Reflect.get(target, property)
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
      },
    })
  }

  const failure = async (promise: Promise<unknown>): Promise<ApiCheckError> => {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.ok(error instanceof ApiCheckError, `an ApiCheckError, not ${String(error)}`)
    assert.equal(error.code, 'API_CHECK_FAILED')
    assert.ok(!error.message.includes('\n'), 'one sentence')
    return error
  }

  it('the right token: the CA matches its hash and the token is taken; the secret only ever on stdin', async () => {
    assert.deepEqual(await checkApiFromWorker(host, server.url, server.token), {caVerified: true})
    const {password} = parseK3sToken(server.token)
    assert.ok(sent.length >= 2)
    for (const command of sent) assert.ok(!command.argv.join(' ').includes(password), 'the secret in argv')
    assert.ok(
      sent.some((command) => command.stdin.includes(password)),
      'the secret reached curl',
    )
  })

  it('a bare secret (no CA hash) is taken too, and says the CA was not verified', async () => {
    assert.deepEqual(await checkApiFromWorker(host, server.url, parseK3sToken(server.token).password), {
      caVerified: false,
    })
  })

  it("another cluster's token: its CA hash does not match", async () => {
    const error = await failure(checkApiFromWorker(host, server.url, other.token))
    assert.equal(error.problem, 'wrong-cluster')
    assert.match(
      error.message,
      new RegExp(
        `^w1: the API at ${server.url} is another cluster's: its CA's sha256 is [0-9a-f]{64}, the token's is [0-9a-f]{64}$`,
      ),
    )
  })

  it('the right CA with a wrong secret: the token is refused', async () => {
    const wrong = server.token.replace(/:[^:]+$/, ':not-the-secret')
    const error = await failure(checkApiFromWorker(host, server.url, wrong))
    assert.equal(error.problem, 'token-refused')
    assert.equal(
      error.message,
      `w1: the API at ${server.url} refused the token (HTTP 401): it is not this cluster's token`,
    )
  })

  it('nothing listening: unreachable, with curl’s reason', async () => {
    const down = `https://${server.address}:${await freePort()}`
    const error = await failure(checkApiFromWorker(host, down, server.token))
    assert.equal(error.problem, 'unreachable')
    assert.match(
      error.message,
      new RegExp(`^w1: the API at ${down} cannot be reached from there \\(curl: \\(7\\) .*\\)$`),
    )
  })

  it('something other than TLS at the address: a TLS failure, with curl’s reason', async () => {
    // A plain TCP server of the test's own on the bridge, answering as an HTTP server without TLS would.
    const sockets = new Set<Socket>()
    const plain = createServer((socket) => {
      sockets.add(socket)
      socket.on('error', () => {}) // curl resets the connection when the answer is not TLS
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n')
    })
    await new Promise<void>((resolve) => plain.listen(0, server.address, resolve))
    try {
      const url = `https://${server.address}:${(plain.address() as AddressInfo).port}`
      const error = await failure(checkApiFromWorker(host, url, server.token))
      assert.equal(error.problem, 'tls')
      assert.match(error.message, new RegExp(`^w1: TLS with the API at ${url} failed \\(curl: \\(35\\) .*\\)$`))
    } finally {
      // close() waits for every connection: one curl left half open must not hold the test.
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => plain.close(resolve))
    }
  })

  it('a worker without curl: a sentence naming the host and what to install', async () => {
    const noCurl = recording(host, (argv) => ['env', 'PATH=/nonexistent', '/bin/sh', ...argv.slice(1)])
    const error = await failure(checkApiFromWorker(noCurl, server.url, server.token))
    assert.equal(error.problem, 'tool-missing')
    assert.match(error.message, /^w1: curl is not installed, .*; install curl$/)
  })
})
