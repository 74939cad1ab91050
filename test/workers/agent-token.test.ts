import {strict as assert} from 'node:assert'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createLab, type Lab, type LabHost, requireLab} from '../helpers/lab.js'
import {ADVERTISED, agentPid} from '../helpers/worker-leftovers.js'
import {writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort, nodes, STANDIN, waitFor} from '../system/cluster-fixture.js'
import {hybrid} from './scene.js'

/**
 * Workers hold the agent token only (docs/architecture.md, "Trust and failure model"): root on a worker
 * must not be able to fetch the cluster's CA keys from the supervisor API (`/v1-k3s/server-bootstrap`,
 * k3s:server role only). The k3s stand-in (named so: no real k3s here) enforces the roles as k3s does. A
 * cluster an older hybrid brought up (k3s without an agent token, the server token on every worker) is
 * moved by the next `up`: each worker's token file rewritten, its agent restarted once, then left alone.
 */

interface Scene {
  readonly dir: string
  readonly lab: Lab
  readonly inventory: string
  readonly apiPort: number
  readonly env: NodeJS.ProcessEnv
  readonly kubeconfig: string
}

const CLUSTER = 'tokens'
const TOKEN_ON_WORKER = '/etc/rancher/k3s/token'

const dataDir = (s: Scene) => join(s.dir, 'data')
const secretOf = (token: string) =>
  token
    .trim()
    .replace(/^K10[0-9a-f]*::/, '')
    .replace(/^[^:]*:/, '')

/**
 * From inside the worker, through its tunnel as the join's API check goes: the HTTP status of `path` with
 * basic auth `user:password`, curl's config (and so the password) on stdin, never in argv.
 */
async function statusFromWorker(host: LabHost, apiPort: number, path: string, user: string, password: string) {
  const r = await host.exec(
    [
      'curl',
      '-sk',
      '--max-time',
      '10',
      '-K',
      '-',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `https://${ADVERTISED}:${apiPort}${path}`,
    ],
    {input: `user = "${user}:${password}"\n`},
  )
  return r.stdout.trim()
}

/** Every file under the worker's own directories that holds `secret` (grep -rl, as root inside the host). */
async function filesHolding(host: LabHost, secret: string): Promise<string> {
  const dirs = ['/etc/rancher', '/var/lib/rancher', '/etc/systemd/system', '/run', '/tmp', '/root']
  const r = await host.exec(['sh', '-c', 'grep -rlsF -e "$(cat)" -- "$@" || true', 'sh', ...dirs], {input: secret})
  return r.stdout.trim()
}

describe('workers hold the agent token only (stand-in k3s, real lab sshd)', function () {
  this.timeout(600_000)
  let scene: Scene | undefined

  before(async function () {
    requireLab(this)
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-agent-token-'))
    const lab = await createLab({hosts: [{name: 'w1'}, {name: 'w2'}]})
    const apiPort = await freePort()
    const inventory = await writeLabInventory(
      dir,
      lab,
      lab.hosts.map((host) => ({host})),
      {name: CLUSTER, k3s: {version: 'v1.34.1+k3s1', binary: STANDIN}, controlPlane: {agent: false, apiPort}},
    )
    scene = {
      dir,
      lab,
      inventory,
      apiPort,
      env: fixtureEnv(dir, {HYBRID_NODE_READY_TIMEOUT_SECONDS: '60'}),
      kubeconfig: join(dir, 'state', 'clusters', CLUSTER, 'kubeconfig'),
    }
  })

  after(async () => {
    if (!scene) return
    await hybrid(scene, ['down', '--uninstall-workers', '--inventory', scene.inventory]).catch(() => undefined)
    await scene.lab.destroy()
    await rm(scene.dir, {recursive: true, force: true})
  })

  it("a worker's token reads the node endpoints but not the cluster's CA keys; the server token is on no worker", async () => {
    const s = scene!
    const up = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`)
    const serverSecret = secretOf(await readFile(join(dataDir(s), 'server', 'token'), 'utf8'))
    assert.ok(serverSecret.length > 8)
    for (const host of s.lab.hosts) {
      const onWorker = (await readFile(host.pathOnMachine(TOKEN_ON_WORKER), 'utf8')).trim()
      assert.match(onWorker, /^K10[0-9a-f]{64}::node:/, `${host.name} holds an agent token`)
      const secret = secretOf(onWorker)
      assert.equal(await statusFromWorker(host, s.apiPort, '/v1-k3s/readyz', 'node', secret), '200')
      for (const user of ['node', 'server']) {
        const status = await statusFromWorker(host, s.apiPort, '/v1-k3s/server-bootstrap', user, secret)
        assert.match(status, /^40[13]$/, `${host.name}'s token as ${user} is refused the bootstrap data (${status})`)
      }
      assert.equal(await filesHolding(host, serverSecret), '', `no file on ${host.name} holds the server token`)
    }
    // The route exists and the server token reaches it: the refusals above are the role's, not a missing route.
    const w1 = s.lab.host('w1')
    assert.equal(await statusFromWorker(w1, s.apiPort, '/v1-k3s/server-bootstrap', 'server', serverSecret), '200')
    const logs = [
      join(s.env.HYBRID_STATE_DIR!, 'logs', 'hybrid.log'),
      join(s.env.HYBRID_STATE_DIR!, 'clusters', CLUSTER, 'supervisor.log'),
    ]
    for (const log of logs)
      assert.ok(!(await readFile(log, 'utf8').catch(() => '')).includes(serverSecret), `${log} has no server token`)
  })

  it('moves a cluster joined the old way (k3s without an agent token, the server token on the workers) in one up', async () => {
    const s = scene!
    // What an older hybrid left running: k3s started from a config without agent-token-file, restarted
    // by its supervisor after a kill; the server token in every worker's token file, the agents restarted.
    const config = join(dataDir(s), 'config.yaml')
    const text = await readFile(config, 'utf8')
    await writeFile(config, text.replace(/^agent-token-file: .*\n/m, ''))
    const state = JSON.parse(await readFile(join(s.env.HYBRID_STATE_DIR!, 'clusters', CLUSTER, 'state.json'), 'utf8'))
    process.kill(state.k3s.pid, 'SIGKILL')
    const serverToken = (await readFile(join(dataDir(s), 'server', 'token'), 'utf8')).trim()
    await waitFor(
      'k3s restarted without an agent token',
      async () => {
        const agentToken = await readFile(join(dataDir(s), 'server', 'agent-token'), 'utf8').catch(() => '')
        const now = JSON.parse(await readFile(join(s.env.HYBRID_STATE_DIR!, 'clusters', CLUSTER, 'state.json'), 'utf8'))
        return now.k3s?.pid !== state.k3s.pid && secretOf(agentToken) === secretOf(serverToken) ? true : undefined
      },
      60_000,
    )
    const old: Record<string, number | undefined> = {}
    for (const host of s.lab.hosts) {
      await writeFile(host.pathOnMachine(TOKEN_ON_WORKER), `${serverToken}\n`, {mode: 0o600})
      const before = await agentPid(host)
      await host.exec(['sh', '-c', `kill ${before}`])
      old[host.name] = await waitFor(`${host.name}'s agent restarted`, async () => {
        const pid = await agentPid(host)
        return pid && pid !== before ? pid : undefined
      })
    }

    const up = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`)
    assert.match(up.stderr, /runs without an agent token of its own/)
    const moved: Record<string, number | undefined> = {}
    for (const host of s.lab.hosts) {
      const onWorker = (await readFile(host.pathOnMachine(TOKEN_ON_WORKER), 'utf8')).trim()
      assert.match(onWorker, /^K10[0-9a-f]{64}::node:/, `${host.name}'s token file was rewritten`)
      assert.notEqual(secretOf(onWorker), secretOf(serverToken))
      moved[host.name] = await agentPid(host)
      assert.ok(moved[host.name] && moved[host.name] !== old[host.name], `${host.name}'s agent was restarted`)
      const status = await statusFromWorker(host, s.apiPort, '/v1-k3s/server-bootstrap', 'node', secretOf(onWorker))
      assert.match(status, /^40[13]$/)
    }
    const seen = await nodes(s)
    for (const host of s.lab.hosts) assert.equal(seen.get(host.name)?.ready, true, `${host.name} is Ready`)

    const again = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`)
    assert.doesNotMatch(again.stderr, /runs without an agent token/)
    for (const host of s.lab.hosts) assert.equal(await agentPid(host), moved[host.name], `${host.name}'s agent stays`)
  })
})
