import {strict as assert} from 'node:assert'
import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {X509Certificate, createHash} from 'node:crypto'
import {mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {request} from 'node:https'
import {type Socket, connect, createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

import Database from 'better-sqlite3'

import {
  AppsV1Api,
  CoreV1Api,
  Health,
  KubeConfig,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  PolicyV1Api,
  type V1DaemonSet,
  type V1Node,
} from '@kubernetes/client-node'

import {sandboxCniConfig} from '../../src/k3s/sandbox-cni.js'
import {applyObjects} from '../../src/kube/apply.js'
import {flannelManifests} from '../../src/kube/flannel.js'
import {runInGvisor, requireGvisor} from '../helpers/gvisor.js'
import {requireRoot, requireTool} from '../helpers/requires.js'

/**
 * The k3s stand-in (test/k3s-standin/k3s) as real processes on 127.0.0.1: its files, its TLS API with
 * @kubernetes/client-node and kubectl, its agent join, and the kubelet's startup accesses. Runs that start the
 * embedded agent write /proc/sys like the kubelet, so they only ever see a private mount namespace in which
 * /proc/sys is a fake tree or a read-only view: the host's tunables are compared before and after.
 */
const STANDIN = fileURLToPath(new URL('../../../test/k3s-standin/k3s', import.meta.url))
const TUNABLES: Array<[string, number]> = [
  ['vm/overcommit_memory', 1],
  ['vm/panic_on_oom', 0],
  ['kernel/panic', 10],
  ['kernel/panic_on_oops', 1],
  ['kernel/keys/root_maxkeys', 1000000],
  ['kernel/keys/root_maxbytes', 25000000],
]
const run = promisify(execFile)

interface Proc {
  child: ChildProcess
  output(): string
  exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>
}

let procs: Proc[] = []
let dirs: string[] = []
let forwards: Array<ReturnType<typeof createServer>> = []

function start(argv: string[], env: NodeJS.ProcessEnv = {}): Proc {
  // Agents here run on this machine itself, not on a worker host: no links, chains or mounts of a node's (stand-in only).
  const child = spawn(argv[0], argv.slice(1), {
    env: {...process.env, K3S_STANDIN_NODE_STATE: 'off', ...env},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) =>
    child.on('close', (code, signal) => resolve({code, signal})),
  )
  const p = {child, output: () => out, exited}
  procs.push(p)
  return p
}
const standin = (args: string[], env?: NodeJS.ProcessEnv) => start([STANDIN, ...args], env)

/** Run the stand-in in a private mount namespace after `setup` (sh, `set -e`: no stand-in if a mount fails). */
function standinPrivate(setup: string, args: string[], env?: NodeJS.ProcessEnv): Proc {
  return start(
    ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `set -e; ${setup}; exec "$@"`, 'sh', STANDIN, ...args],
    env,
  )
}
const FAKE_PROC_SYS = 'mount --bind "$FAKE_PROC_SYS" /proc/sys'
const READONLY_PROC_SYS = 'mount --bind /proc/sys /proc/sys; mount -o remount,bind,ro /proc/sys'

async function waitForOutput(p: Proc, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (pattern.test(p.output())) return p.output()
    if (p.child.exitCode !== null || p.child.signalCode !== null) break
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`no ${pattern} in the stand-in's output:\n${p.output()}`)
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix))
  dirs.push(d)
  return d
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address() as {port: number}
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

/** GET over TLS without a client certificate (the CA is not checked here; the kubeconfig tests check it). */
function rawGet(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{status: number; body: string}> {
  return new Promise((resolve, reject) => {
    const req = request({host: '127.0.0.1', port, path, headers, rejectUnauthorized: false}, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({status: res.statusCode!, body}))
    })
    req.on('error', reject)
    req.end()
  })
}

/** A request with the admin's client certificate from the server's kubeconfig (to read a Status body as sent). */
function rawRequest(s: Server, method: string, path: string, body: string): Promise<{status: number; body: string}> {
  const user = s.kc.getCurrentUser()
  const cluster = s.kc.getCurrentCluster()
  const b64 = (v?: string) => Buffer.from(v ?? '', 'base64')
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: s.port,
        path,
        method,
        headers: {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body)},
        ca: b64(cluster?.caData),
        cert: b64(user?.certData),
        key: b64(user?.keyData),
      },
      (res) => {
        let text = ''
        res.on('data', (d) => (text += d))
        res.on('end', () => resolve({status: res.statusCode!, body: text}))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

async function hostTunables(): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {}
  for (const [name] of TUNABLES) out[name] = await readFile(`/proc/sys/${name}`, 'utf8').catch(() => null)
  return out
}

async function fakeProcSys(values: Record<string, string | null>): Promise<string> {
  const dir = await tempDir('standin-procsys-')
  for (const [name, value] of Object.entries(values)) {
    if (value === null) continue
    await mkdir(join(dir, name, '..'), {recursive: true})
    await writeFile(join(dir, name), value + '\n')
  }
  return dir
}

interface Server {
  proc: Proc
  port: number
  dataDir: string
  kubeconfig: string
  api: CoreV1Api
  kc: KubeConfig
}

async function startServer(
  extra: string[] = [],
  how: {setup?: string; env?: NodeJS.ProcessEnv; again?: Server} = {},
): Promise<Server> {
  // again: the same data dir, port and kubeconfig as an earlier server (a restart)
  const dir = how.again ? join(how.again.dataDir, '..') : await tempDir('standin-server-')
  const port = how.again?.port ?? (await freePort())
  const dataDir = join(dir, 'data')
  const kubeconfig = join(dir, 'k3s.yaml')
  const args = [
    'server',
    '--data-dir',
    dataDir,
    '--https-listen-port',
    String(port),
    '--bind-address',
    '127.0.0.1',
    '--write-kubeconfig',
    kubeconfig,
    // the advertised address is dialled by agents (and the server's own): keep it on loopback
    ...(extra.includes('--advertise-address') ? [] : ['--advertise-address', '127.0.0.1']),
    ...extra,
  ]
  const proc = how.setup ? standinPrivate(how.setup, args, how.env) : standin(args, how.env)
  await waitForOutput(proc, /k3s is up and running/)
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  return {proc, port, dataDir, kubeconfig, api: kc.makeApiClient(CoreV1Api), kc}
}

/** A TCP forward from host:port to 127.0.0.1:to, as an SSH remote forward would be; close() cuts its connections too. */
async function forward(host: string, port: number, to: number): Promise<{close(): Promise<void>}> {
  const sockets = new Set<Socket>()
  const server = createServer((inbound) => {
    const outbound = connect(to, '127.0.0.1')
    for (const s of [inbound, outbound]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {})
    }
    inbound.pipe(outbound).pipe(inbound)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  forwards.push(server)
  return {
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

const readyOf = (n: V1Node) => n.status?.conditions?.find((c) => c.type === 'Ready')
/** The kubelet's Ready condition while containerd has no CNI config to load. */
const NO_CNI = {
  status: 'False',
  reason: 'KubeletNotReady',
  message:
    'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized',
}
const readyWords = (n: V1Node) => {
  const r = readyOf(n)
  return {status: r?.status, reason: r?.reason, message: r?.message}
}
/** Wait past the Node's next status update (its Ready heartbeat moves). */
async function nextHeartbeat(api: CoreV1Api, name: string): Promise<V1Node> {
  const before = String(readyOf(await api.readNode({name}))?.lastHeartbeatTime)
  return waitFor(
    `a heartbeat of ${name}`,
    async () => {
      const n = await api.readNode({name})
      return String(readyOf(n)?.lastHeartbeatTime) !== before ? n : undefined
    },
    15_000,
  )
}

/** `k3s agent` NAME joining `s` through --server on 127.0.0.1 with the server's agent token. */
function joinAgent(s: Server, name: string, extra: string[], env?: NodeJS.ProcessEnv): Proc {
  const server = `https://127.0.0.1:${s.port}`
  const token = join(s.dataDir, 'server/agent-token')
  // --rootless: the node password under the agent's data dir, not this machine's /etc/rancher/node
  return standin(['agent', '--server', server, '--token-file', token, '--node-name', name, '--rootless', ...extra], env)
}

/** client-node returns class instances; compare their JSON. */
const plain = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown
const node = (name: string, labels: Record<string, string> = {}): V1Node => ({metadata: {name, labels}})
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)
const strategicPatch = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch)

describe('k3s stand-in', function () {
  this.timeout(60_000)
  let hostBefore: Record<string, string | null>

  before(async () => {
    hostBefore = await hostTunables()
  })

  afterEach(async () => {
    for (const f of forwards) f.close()
    forwards = []
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
    await Promise.all(procs.map((p) => p.exited))
    procs = []
    await Promise.all(dirs.map((d) => rm(d, {recursive: true, force: true})))
    dirs = []
  })

  after(async () => {
    assert.deepEqual(await hostTunables(), hostBefore, "the host's /proc/sys tunables must never change")
  })

  describe('command line', () => {
    it('names itself a stand-in in --version and -v', async () => {
      for (const flag of ['--version', '-v']) {
        const {stdout} = await run(STANDIN, [flag])
        assert.match(stdout, /^k3s version v1\.34\.1\+k3s1 \(stand-in\)\n/)
      }
    })

    it("fails on an unknown flag with k3s's words and exit 1", async () => {
      const p = standin(['server', '--foo=bar'])
      const {code} = await p.exited
      assert.equal(code, 1)
      assert.match(p.output(), /^Incorrect Usage: flag provided but not defined: -foo$/m)
      assert.match(p.output(), /level=fatal msg="flag provided but not defined: -foo"/)
    })

    it('reads --config like k3s: flag names as keys, lists, quoting, unknown keys skipped with a warning', async () => {
      const dir = await tempDir('standin-config-')
      const port = await freePort()
      const config = join(dir, 'config.yaml')
      await writeFile(
        config,
        [
          '# a k3s config',
          `data-dir: ${join(dir, 'data')}`,
          `https-listen-port: "${port}"`,
          'bind-address: 127.0.0.1',
          `write-kubeconfig: '${join(dir, 'kc.yaml')}'`,
          'write-kubeconfig-mode: "0640"',
          'disable-agent: true',
          'tls-san: [stand-in.example, "10.0.0.7"]',
          'kube-apiserver-arg:',
          '  - audit-log-maxage=3',
          'not-a-k3s-flag: 1',
          '',
        ].join('\n'),
      )
      const p = standin(['server', '--config', config])
      await waitForOutput(p, /k3s is up and running/)
      assert.match(p.output(), /level=warning msg="Unknown flag --not-a-k3s-flag found in config.yaml, skipping"/)
      assert.match(p.output(), /Running kube-apiserver .*--audit-log-maxage=3/)
      assert.equal((await stat(join(dir, 'kc.yaml'))).mode & 0o777, 0o640)
      const serving = await readFile(join(dir, 'data/server/tls/serving-kube-apiserver.crt'), 'utf8')
      const san = new X509Certificate(serving).subjectAltName ?? ''
      assert.match(san, /DNS:stand-in\.example/)
      assert.match(san, /IP Address:10\.0\.0\.7/)
    })
  })

  describe('server --disable-agent', () => {
    it("writes k3s's token files (0600) and kubeconfig, keeps its CA across restarts, and serves /readyz", async () => {
      const s = await startServer(['--disable-agent', '--token', 'sekrit123'])
      const serverDir = join(s.dataDir, 'server')
      const ca = await readFile(join(serverDir, 'tls/server-ca.crt'))
      const expected = `K10${createHash('sha256').update(ca).digest('hex')}::server:sekrit123\n`
      for (const f of ['token', 'node-token', 'agent-token']) {
        assert.equal(await readFile(join(serverDir, f), 'utf8'), expected, f)
        assert.equal((await stat(join(serverDir, f))).mode & 0o777, 0o600, f)
      }
      assert.equal((await stat(s.kubeconfig)).mode & 0o777, 0o600)
      assert.equal(s.kc.getCurrentCluster()?.server, `https://127.0.0.1:${s.port}`)
      assert.deepEqual(
        (await readdir(join(s.kubeconfig, '..'))).filter((f) => f.includes('.tmp')),
        [],
      )

      assert.equal(await new Health(s.kc).readyz({}), true)
      assert.equal((await rawGet(s.port, '/readyz')).status, 401, 'no client certificate, no API')
      assert.equal((await rawGet(s.port, '/cacerts')).body, ca.toString())
      assert.equal((await rawGet(s.port, '/ping')).body, 'pong')
      const basic = {Authorization: `Basic ${Buffer.from('node:sekrit123').toString('base64')}`}
      assert.equal((await rawGet(s.port, '/v1-k3s/readyz', basic)).status, 200)
      assert.equal(
        (
          await rawGet(s.port, '/v1-k3s/readyz', {
            Authorization: `Basic ${Buffer.from('node:wrong').toString('base64')}`,
          })
        ).status,
        401,
      )

      s.proc.child.kill('SIGTERM')
      assert.deepEqual(await s.proc.exited, {code: 0, signal: null})
      assert.match(s.proc.output(), /level=info msg="Shutting down"/)
      const again = standin([
        'server',
        '--disable-agent',
        '--data-dir',
        s.dataDir,
        '--https-listen-port',
        String(s.port),
        '--bind-address',
        '127.0.0.1',
        '--write-kubeconfig',
        s.kubeconfig,
      ])
      await waitForOutput(again, /k3s is up and running/)
      assert.deepEqual(await readFile(join(serverDir, 'tls/server-ca.crt')), ca, 'the CA survives a restart')
      assert.equal(await readFile(join(serverDir, 'token'), 'utf8'), expected, 'so does the token')
    })

    it('serves nodes to @kubernetes/client-node: create, list by label, patch, watch, conflicts, delete', async () => {
      const s = await startServer(['--disable-agent'])
      const events: string[] = []
      const watch = await new Watch(s.kc).watch(
        '/api/v1/nodes',
        {},
        (type, obj) => events.push(`${type} ${obj.metadata.name}`),
        () => {},
      )
      try {
        await s.api.createNode({body: node('w1', {zone: 'a'})})
        await s.api.createNode({body: node('w2', {zone: 'b'})})
        await assert.rejects(s.api.createNode({body: node('w1')}), (e: {code?: number}) => e.code === 409)
        await assert.rejects(s.api.createNode({body: node('Bad_Name')}), (e: {code?: number}) => e.code === 422)
        assert.deepEqual(
          (await s.api.listNode({labelSelector: 'zone=a'})).items.map((n) => n.metadata?.name),
          ['w1'],
        )
        assert.deepEqual(
          (await s.api.listNode({labelSelector: 'zone in (a,b),zone!=b'})).items.map((n) => n.metadata?.name),
          ['w1'],
        )

        await s.api.patchNode({name: 'w1', body: {metadata: {labels: {zone: null, tier: 'x'}}}}, mergePatch)
        await s.api.patchNode(
          {name: 'w1', body: {spec: {taints: [{key: 'k', value: 'v', effect: 'NoSchedule'}]}}},
          strategicPatch,
        )
        await s.api.patchNode({name: 'w1', body: [{op: 'add', path: '/spec/unschedulable', value: true}]})
        const w1 = await s.api.readNode({name: 'w1'})
        assert.deepEqual(plain(w1.metadata?.labels), {tier: 'x'})
        assert.deepEqual(plain(w1.spec?.taints), [{key: 'k', value: 'v', effect: 'NoSchedule'}])
        assert.equal(w1.spec?.unschedulable, true)

        const stale = {...w1, metadata: {...w1.metadata, resourceVersion: '1'}}
        await assert.rejects(s.api.replaceNode({name: 'w1', body: stale}), (e: {code?: number}) => e.code === 409)
        await s.api.deleteNode({name: 'w2'})
        await assert.rejects(s.api.readNode({name: 'w2'}), (e: {code?: number}) => e.code === 404)
        await waitFor('the watch to see it all', async () => (events.includes('DELETED w2') ? true : undefined), 5000)
        assert.deepEqual(events, ['ADDED w1', 'ADDED w2', 'MODIFIED w1', 'MODIFIED w1', 'MODIFIED w1', 'DELETED w2'])
      } finally {
        watch.abort()
      }
    })

    it('works with kubectl: get nodes -o json, cordon, drain with a real eviction', async function () {
      requireTool(this, 'kubectl', 'kubernetes-client')
      const s = await startServer(['--disable-agent'])
      await s.api.createNode({body: node('w1')})
      await s.api.createNamespacedPod({
        namespace: 'default',
        body: {metadata: {name: 'p1'}, spec: {nodeName: 'w1', containers: [{name: 'c', image: 'busybox'}]}},
      })
      const cache = await tempDir('standin-kubectl-')
      const kubectl = (...args: string[]) =>
        run('kubectl', ['--kubeconfig', s.kubeconfig, '--cache-dir', cache, ...args])

      const list = JSON.parse((await kubectl('get', 'nodes', '-o', 'json')).stdout)
      assert.deepEqual(
        list.items.map((n: V1Node) => n.metadata?.name),
        ['w1'],
      )
      assert.match((await kubectl('cordon', 'w1')).stdout, /node\/w1 cordoned/)
      assert.equal((await s.api.readNode({name: 'w1'})).spec?.unschedulable, true)
      assert.match((await kubectl('get', 'pods', '-A')).stdout, /default\s+p1\s+/)
      const drained = await kubectl('drain', 'w1', '--force', '--ignore-daemonsets', '--timeout=20s')
      assert.match(drained.stdout, /pod\/p1 evicted/)
      assert.deepEqual((await s.api.listPodForAllNamespaces()).items, [])
      assert.match((await kubectl('delete', 'node', 'w1')).stdout, /node "w1" deleted/)
    })
    it('keeps a DaemonSet as the apiserver and its controller would: defaults, generation, desired count from Nodes', async () => {
      const s = await startServer(['--disable-agent'])
      const apps = s.kc.makeApiClient(AppsV1Api)
      await s.api.createNode({body: node('a1', {zone: 'a'})})
      await s.api.createNode({
        body: {...node('a2', {zone: 'a'}), spec: {taints: [{key: 'dedicated', value: 'db', effect: 'NoExecute'}]}},
      })
      await s.api.createNode({body: node('b1', {zone: 'b'})})
      const nodeAffinity = {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{matchExpressions: [{key: 'zone', operator: 'In', values: ['a']}]}],
        },
      }
      const body: V1DaemonSet = {
        metadata: {name: 'd', namespace: 'kube-system'},
        spec: {
          selector: {matchLabels: {app: 'd'}},
          template: {
            metadata: {labels: {app: 'd'}},
            spec: {affinity: {nodeAffinity}, containers: [{name: 'c', image: 'example.com/d:v1'}]},
          },
        },
      }
      const read = () => apps.readNamespacedDaemonSet({name: 'd', namespace: 'kube-system'})
      await apps.createNamespacedDaemonSet({namespace: 'kube-system', body})
      let ds = await read()
      assert.equal(ds.status?.desiredNumberScheduled, 1, "a1 only: b1 is in another zone, a2's taint is not tolerated")
      assert.equal(ds.status?.numberReady, 0, 'no pods run, and the status does not pretend they do')
      assert.equal(ds.spec?.template.spec?.dnsPolicy, 'ClusterFirst')
      assert.equal(ds.spec?.template.spec?.containers[0].imagePullPolicy, 'IfNotPresent')
      assert.equal(ds.spec?.updateStrategy?.type, 'RollingUpdate')
      assert.equal(ds.metadata?.generation, 1)

      await apps.replaceNamespacedDaemonSet({
        name: 'd',
        namespace: 'kube-system',
        body: {...body, metadata: ds.metadata},
      })
      assert.equal((await read()).metadata?.generation, 1, 'the same spec again (defaults aside) is no new generation')
      const tolerant = structuredClone(body)
      tolerant.spec!.template.spec!.tolerations = [{key: 'dedicated', operator: 'Exists'}]
      await apps.replaceNamespacedDaemonSet({
        name: 'd',
        namespace: 'kube-system',
        body: {...tolerant, metadata: (await read()).metadata},
      })
      ds = await read()
      assert.equal(ds.metadata?.generation, 2)
      assert.equal(ds.status?.desiredNumberScheduled, 2, 'a2 now tolerated')
      assert.equal(ds.status?.observedGeneration, 2)
      await s.api.deleteNode({name: 'a1'})
      assert.equal((await read()).status?.desiredNumberScheduled, 1, 'a deleted Node no longer counts')
    })

    it('answers an eviction its PodDisruptionBudget forbids with 429 and the DisruptionBudget cause, and keeps the budget status from the healthy pods', async () => {
      const s = await startServer(['--disable-agent'])
      const policy = s.kc.makeApiClient(PolicyV1Api)
      const ready = [{type: 'Ready', status: 'True'}]
      await s.api.createNode({body: {...node('w1'), status: {conditions: ready}}})
      for (const name of ['web-1', 'web-2'])
        await s.api.createNamespacedPod({
          namespace: 'default',
          body: {
            metadata: {name, labels: {app: 'web'}},
            spec: {nodeName: 'w1', containers: [{name: 'c', image: 'nginx'}]},
          },
        })
      await policy.createNamespacedPodDisruptionBudget({
        namespace: 'default',
        body: {metadata: {name: 'web'}, spec: {minAvailable: 2, selector: {matchLabels: {app: 'web'}}}},
      })
      const budget = async () =>
        (await policy.readNamespacedPodDisruptionBudget({name: 'web', namespace: 'default'})).status
      const st = await budget()
      assert.deepEqual(
        [st?.currentHealthy, st?.desiredHealthy, st?.expectedPods, st?.disruptionsAllowed, st?.observedGeneration],
        [2, 2, 2, 0, 1],
      )
      assert.equal(st?.conditions?.[0]?.reason, 'InsufficientPods')

      const evict = async (name: string) => {
        const body = JSON.stringify({apiVersion: 'policy/v1', kind: 'Eviction', metadata: {name, namespace: 'default'}})
        const r = await rawRequest(s, 'POST', `/api/v1/namespaces/default/pods/${name}/eviction`, body)
        return {status: r.status, body: JSON.parse(r.body) as Record<string, unknown>}
      }
      const refused = await evict('web-1')
      assert.equal(refused.status, 429)
      assert.deepEqual(refused.body, {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: "Cannot evict pod as it would violate the pod's disruption budget.",
        reason: 'TooManyRequests',
        details: {
          causes: [
            {reason: 'DisruptionBudget', message: 'The disruption budget web needs 2 healthy pods and has 2 currently'},
          ],
        },
        code: 429,
      })
      assert.equal((await s.api.listNamespacedPod({namespace: 'default'})).items.length, 2, 'nothing was evicted')

      await policy.patchNamespacedPodDisruptionBudget(
        {name: 'web', namespace: 'default', body: {spec: {minAvailable: 1}}},
        mergePatch,
      )
      assert.equal((await budget())?.disruptionsAllowed, 1)
      assert.equal((await evict('web-1')).status, 201)
      const left = await budget()
      assert.deepEqual([left?.currentHealthy, left?.disruptionsAllowed], [1, 0])
      const again = await evict('web-2')
      assert.equal(again.status, 429)
      assert.match(JSON.stringify(again.body), /The disruption budget web needs 1 healthy pods and has 1 currently/)

      // a pod that is not healthy (its Node NotReady) does not count: the budget has none to spare
      await s.api.patchNodeStatus(
        {name: 'w1', body: {status: {conditions: [{type: 'Ready', status: 'False'}]}}},
        strategicPatch,
      )
      assert.deepEqual([(await budget())?.currentHealthy, (await budget())?.disruptionsAllowed], [0, 0])
    })
  })

  describe('server datastore and node passwords', () => {
    const secretOf = (s: Server, name: string) =>
      s.api.readNamespacedSecret({name: `${name}.node-password.k3s`, namespace: 'kube-system'})

    it('keeps Nodes, node-password secrets and resourceVersions across a SIGKILL and a SIGTERM restart', async () => {
      let s = await startServer(['--disable-agent'])
      const agentDir = await tempDir('standin-agent-')
      const agent = joinAgent(s, 'w1', ['--data-dir', agentDir], {K3S_STANDIN_GIVE_UP_SECONDS: '50'})
      const w1 = await waitFor('the Node w1', async () => readyOf(await s.api.readNode({name: 'w1'}))?.status)
      assert.equal(w1, 'True')
      const secret = await waitFor('the Node owning its secret', async () => {
        const sec = await secretOf(s, 'w1')
        return sec.metadata?.ownerReferences?.length ? sec : undefined
      })
      const node = await s.api.readNode({name: 'w1'})
      assert.equal(secret.type, 'k3s.cattle.io/node-password')
      assert.equal(secret.immutable, true)
      assert.match(Buffer.from(secret.data!.hash, 'base64').toString(), /^\$1:[0-9a-f]{16}:15:8:1:[A-Za-z0-9+/]{86}$/)
      assert.deepEqual(plain(secret.metadata?.ownerReferences), [
        {apiVersion: 'v1', kind: 'Node', name: 'w1', uid: node.metadata?.uid},
      ])
      const password = (await readFile(join(agentDir, 'agent/etc/rancher/node/password'), 'utf8')).trim()
      assert.match(password, /^[0-9a-f]{32}$/)
      assert.equal((await stat(join(agentDir, 'agent/etc/rancher/node/password'))).mode & 0o777, 0o600)
      assert.equal(Buffer.from(secret.data!.hash, 'base64').toString().includes(password), false)
      await s.api.createNamespacedConfigMap({namespace: 'default', body: {metadata: {name: 'before-kill'}}})
      const rvBefore = Number(
        (await s.api.readNamespacedConfigMap({name: 'before-kill', namespace: 'default'})).metadata?.resourceVersion,
      )
      await new Promise((r) => setTimeout(r, 500)) // longer than the write-behind delay (README)

      s.proc.child.kill('SIGKILL')
      await s.proc.exited
      assert.match((await readdir(join(s.dataDir, 'server/db'))).join(' '), /state\.db-wal/, 'kine’s sqlite, WAL mode')
      // kine's table: one live row per key, the row's id its revision, the object as JSON
      const kine = new Database(join(s.dataDir, 'server/db/state.db'), {readonly: true})
      const row = kine
        .prepare('SELECT id, deleted, value FROM kine WHERE name = ?')
        .get('/registry/configmaps/default/before-kill') as {id: number; deleted: number; value: Buffer}
      kine.close()
      assert.deepEqual([row.id, row.deleted, JSON.parse(String(row.value)).metadata.name], [rvBefore, 0, 'before-kill'])
      s = await startServer(['--disable-agent'], {again: s})
      assert.equal((await s.api.readNode({name: 'w1'})).metadata?.uid, node.metadata?.uid)
      assert.equal((await secretOf(s, 'w1')).metadata?.uid, secret.metadata?.uid)
      assert.equal(
        (await s.api.readNamespacedConfigMap({name: 'before-kill', namespace: 'default'})).metadata?.name,
        'before-kill',
      )
      const after = await s.api.createNamespacedConfigMap({
        namespace: 'default',
        body: {metadata: {name: 'after-kill'}},
      })
      assert.ok(Number(after.metadata?.resourceVersion) > rvBefore, 'resourceVersions go on increasing')
      // the agent, still running, goes on heartbeating to the restarted server
      const beat = String(readyOf(await s.api.readNode({name: 'w1'}))?.lastHeartbeatTime)
      await waitFor('a heartbeat after the restart', async () =>
        String(readyOf(await s.api.readNode({name: 'w1'}))?.lastHeartbeatTime) !== beat ? true : undefined,
      )

      // SIGTERM: what was acknowledged just before is written on the way out
      await s.api.createNamespacedConfigMap({namespace: 'default', body: {metadata: {name: 'before-term'}}})
      s.proc.child.kill('SIGTERM')
      assert.deepEqual(await s.proc.exited, {code: 0, signal: null})
      s = await startServer(['--disable-agent'], {again: s})
      assert.equal(
        (await s.api.readNamespacedConfigMap({name: 'before-term', namespace: 'default'})).metadata?.name,
        'before-term',
      )
      agent.child.kill('SIGTERM')
      await agent.exited
    })

    it("refuses a second agent under a known name with another password, in k3s's words, also after a restart; the secret goes with its Node", async () => {
      let s = await startServer(['--disable-agent'])
      const first = joinAgent(s, 'w1', ['--data-dir', await tempDir('standin-agent-')])
      await waitFor('the Node w1', async () => (await s.api.readNode({name: 'w1'})).metadata?.name)
      first.child.kill('SIGTERM')
      await first.exited
      s.proc.child.kill('SIGTERM')
      await s.proc.exited
      s = await startServer(['--disable-agent'], {again: s})

      const otherDir = await tempDir('standin-agent-')
      const second = joinAgent(s, 'w1', ['--data-dir', otherDir])
      const file = join(otherDir, 'agent/etc/rancher/node/password')
      await waitForOutput(
        second,
        new RegExp(
          `level=info msg="Waiting to retrieve agent configuration; server is not ready: Node password rejected, duplicate hostname or contents of '${file}' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag"`,
        ),
      )
      // k3s's agent retries every 5 s for ever; the Node stays the first agent's
      await new Promise((r) => setTimeout(r, 6000))
      assert.equal(second.child.exitCode, null)
      assert.equal((await s.api.listNode()).items.length, 1)
      second.child.kill('SIGTERM')
      await second.exited

      await s.api.deleteNode({name: 'w1'})
      await waitFor('the secret gone with its Node', async () =>
        (await s.api.listNamespacedSecret({namespace: 'kube-system'})).items.length === 0 ? true : undefined,
      )
      const third = joinAgent(s, 'w1', ['--data-dir', otherDir])
      await waitFor(
        'the Node w1 under its new password',
        async () => (await s.api.readNode({name: 'w1'})).metadata?.name,
      )
      third.child.kill('SIGTERM')
      await third.exited
    })
  })

  describe('agent', () => {
    it('joins with the token, registers its Node with labels and taints, heartbeats, re-registers, stops on SIGTERM', async () => {
      const s = await startServer(['--disable-agent'])
      const agentDir = await tempDir('standin-agent-')
      const agent = joinAgent(s, 'w1', [
        '--node-label',
        'zone=a',
        '--node-taint',
        'dedicated=gpu:NoSchedule',
        '--data-dir',
        agentDir,
      ])
      const w1 = await waitFor(
        "the agent's Node",
        async () => (await s.api.listNode({labelSelector: 'zone=a'})).items[0],
      )
      assert.equal(w1.metadata?.name, 'w1')
      assert.deepEqual(plain(w1.spec?.taints), [{key: 'dedicated', value: 'gpu', effect: 'NoSchedule'}])
      assert.equal(w1.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True')
      assert.equal(w1.status?.nodeInfo?.kubeletVersion, 'v1.34.1+k3s1')
      const before = w1.status?.conditions?.find((c) => c.type === 'Ready')?.lastHeartbeatTime
      await waitFor(
        'a heartbeat',
        async () => {
          const n = await s.api.readNode({name: 'w1'})
          return String(n.status?.conditions?.find((c) => c.type === 'Ready')?.lastHeartbeatTime) !== String(before)
            ? true
            : undefined
        },
        15_000,
      )

      await s.api.deleteNode({name: 'w1'})
      await waitFor('registration again', async () => (await s.api.readNode({name: 'w1'})).metadata?.name, 15_000)
      assert.equal((await stat(join(agentDir, 'agent/client-kubelet.key'))).mode & 0o777, 0o600)
      agent.child.kill('SIGTERM')
      assert.deepEqual(await agent.exited, {code: 0, signal: null})
    })

    it("with flannel-backend none stays NotReady in the kubelet's words until a DaemonSet that belongs on its Node copies its CNI config there (hybrid's flannel)", async () => {
      const s = await startServer(['--disable-agent', '--flannel-backend', 'none'])
      const agentDir = await tempDir('standin-agent-')
      const confDir = join(agentDir, 'agent/etc/cni/net.d')
      // labelled as the sandbox's Node: hybrid's flannel keeps off it
      joinAgent(s, 'w1', ['--data-dir', agentDir, '--node-label', 'hybrid.dev/sandbox=true'])
      const w1 = await waitFor("the agent's Node", async () => (await s.api.listNode()).items[0])
      assert.deepEqual(readyWords(w1), NO_CNI)

      const objects = flannelManifests({clusterCidr: '10.42.0.0/16', cniConfDir: confDir})
      await applyObjects(s.kc, objects)
      assert.deepEqual(
        readyWords(await nextHeartbeat(s.api, 'w1')),
        NO_CNI,
        'a DaemonSet that excludes the Node changes nothing',
      )
      assert.deepEqual(await readdir(confDir).catch(() => []), [])

      await s.api.patchNode({name: 'w1', body: {metadata: {labels: {'hybrid.dev/sandbox': null}}}}, mergePatch)
      const ready = await waitFor(
        'the Node Ready',
        async () => {
          const n = await s.api.readNode({name: 'w1'})
          return readyOf(n)?.status === 'True' ? n : undefined
        },
        15_000,
      )
      assert.equal(readyOf(ready)?.reason, 'KubeletReady')
      const cm = objects.find((o) => o.kind === 'ConfigMap') as {data: Record<string, string>}
      assert.deepEqual(
        await readdir(confDir),
        ['10-flannel.conflist'],
        "install-cni's copy, and nothing from k3s's own flannel",
      )
      assert.equal(await readFile(join(confDir, '10-flannel.conflist'), 'utf8'), cm.data['cni-conf.json'])
      assert.ok(
        Date.parse(String(readyOf(ready)?.lastTransitionTime)) > Date.parse(String(ready.metadata?.creationTimestamp)),
        'Ready is a transition after registration',
      )
    })

    it("refuses a server whose CA does not match the token's hash, in k3s's words, and gives up", async () => {
      const s = await startServer(['--disable-agent', '--token', 'sekrit123'])
      const bad = `K10${'0'.repeat(64)}::node:sekrit123`
      const agent = standin(
        [
          'agent',
          '--server',
          `https://127.0.0.1:${s.port}`,
          '--token',
          bad,
          '--node-name',
          'w9',
          '--data-dir',
          await tempDir('standin-agent-'),
        ],
        {K3S_STANDIN_GIVE_UP_SECONDS: '3'},
      )
      const {code} = await agent.exited
      assert.equal(code, 1)
      assert.match(
        agent.output(),
        new RegExp(
          `level=error msg="Failed to validate connection to cluster at https://127.0.0.1:${s.port}: token CA hash does not match the Cluster CA certificate hash: 0{64} != [0-9a-f]{64}"`,
        ),
      )
      assert.deepEqual((await s.api.listNode()).items, [])
    })

    it('after bootstrapping through --server talks only to the advertised address: waits, registers, reconnects', async () => {
      const advertisePort = await freePort()
      const s = await startServer([
        '--disable-agent',
        '--advertise-address',
        '127.0.0.2',
        '--advertise-port',
        String(advertisePort),
      ])
      const ep = await s.api.readNamespacedEndpoints({name: 'kubernetes', namespace: 'default'})
      assert.deepEqual(plain(ep.subsets), [
        {addresses: [{ip: '127.0.0.2'}], ports: [{name: 'https', port: advertisePort, protocol: 'TCP'}]},
      ])
      const agent = joinAgent(
        s,
        'w2',
        [
          '--node-label',
          'zone=b',
          '--node-taint',
          'dedicated=edge:NoExecute',
          '--data-dir',
          await tempDir('standin-agent-'),
        ],
        {K3S_STANDIN_GIVE_UP_SECONDS: '50'},
      )
      const url = `wss://127.0.0.2:${advertisePort}/v1-k3s/connect`
      const dark = new RegExp(
        `level=error msg="Remotedialer proxy error; reconnecting..." error="dial tcp 127.0.0.2:${advertisePort}: connect: connection refused" url="${url}"`,
      )
      await waitForOutput(
        agent,
        new RegExp(`Got apiserver addresses from supervisor: \\[127.0.0.2:${advertisePort}\\]`),
      )
      await waitForOutput(agent, dark)
      await new Promise((r) => setTimeout(r, 3000))
      assert.deepEqual((await s.api.listNode()).items, [], 'no Node while the advertised address is dark')

      let fwd = await forward('127.0.0.2', advertisePort, s.port)
      const w2 = await waitFor('the Node through the advertised address', async () =>
        (await s.api.listNode({labelSelector: 'zone=b'})).items.find((n) => readyOf(n)?.status === 'True'),
      )
      assert.equal(w2.metadata?.name, 'w2')
      assert.deepEqual(plain(w2.spec?.taints), [{key: 'dedicated', value: 'edge', effect: 'NoExecute'}])
      assert.match(agent.output(), new RegExp(`level=info msg="Connecting to proxy" url="${url}"`))

      await fwd.close()
      const lostAt = agent.output().length
      await waitFor('the agent to notice', async () => (dark.test(agent.output().slice(lostAt)) ? true : undefined))
      const stale = String(readyOf(await s.api.readNode({name: 'w2'}))?.lastHeartbeatTime)
      await new Promise((r) => setTimeout(r, 2 * 5000 + 1000))
      assert.equal(
        String(readyOf(await s.api.readNode({name: 'w2'}))?.lastHeartbeatTime),
        stale,
        'no heartbeat reaches the server by --server while the advertised address is dark',
      )

      fwd = await forward('127.0.0.2', advertisePort, s.port)
      await waitFor(
        'heartbeats again',
        async () =>
          String(readyOf(await s.api.readNode({name: 'w2'}))?.lastHeartbeatTime) !== stale ? true : undefined,
        15_000,
      )
      assert.equal(agent.child.exitCode, null)
    })

    it('exits 1 when the server stays unreachable', async () => {
      const port = await freePort()
      const agent = standin(
        [
          'agent',
          '--server',
          `https://127.0.0.1:${port}`,
          '--token',
          'x',
          '--data-dir',
          await tempDir('standin-agent-'),
        ],
        {K3S_STANDIN_GIVE_UP_SECONDS: '2'},
      )
      assert.equal((await agent.exited).code, 1)
      assert.match(agent.output(), new RegExp(`dial tcp 127.0.0.1:${port}: connect: connection refused`))
      assert.match(agent.output(), /level=fatal/)
    })
  })

  describe("server with its agent: the kubelet's startup accesses", () => {
    beforeEach(function () {
      requireRoot(this)
      requireTool(this, 'unshare', 'util-linux')
    })

    it('passes the overlay check on this filesystem, sets the fake tunables, and registers its tainted Node', async () => {
      const fake = await fakeProcSys({
        ...Object.fromEntries(TUNABLES.map(([n, v]) => [n, String(v)])),
        'vm/overcommit_memory': '0',
        'kernel/panic': '0',
      })
      const s = await startServer(
        [
          '--node-name',
          'sandbox',
          '--node-label',
          'hybrid.dev/sandbox=true',
          '--node-taint',
          'hybrid.dev/sandbox=true:NoSchedule',
        ],
        {setup: FAKE_PROC_SYS, env: {FAKE_PROC_SYS: fake}},
      )
      assert.equal(await readFile(join(fake, 'vm/overcommit_memory'), 'utf8'), '1', 'the kubelet writes what differs')
      assert.equal(await readFile(join(fake, 'kernel/panic'), 'utf8'), '10')
      assert.equal(await readFile(join(fake, 'vm/panic_on_oom'), 'utf8'), '0\n', 'and leaves what matches')
      assert.deepEqual(
        await readdir(join(s.dataDir, 'agent/containerd')),
        [],
        'the overlay check cleans up after itself',
      )
      const n = await s.api.readNode({name: 'sandbox'})
      assert.deepEqual(plain(n.spec?.taints), [{key: 'hybrid.dev/sandbox', value: 'true', effect: 'NoSchedule'}])
      assert.equal(n.metadata?.labels?.['node-role.kubernetes.io/control-plane'], 'true')
      assert.equal(n.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True')
    })

    it("with flannel-backend none keeps its Node NotReady in the kubelet's words until a CNI config is in its conf dir (hybrid's loopback conflist)", async () => {
      const fake = await fakeProcSys(Object.fromEntries(TUNABLES.map(([n, v]) => [n, String(v)])))
      const s = await startServer(['--node-name', 'sandbox', '--flannel-backend', 'none'], {
        setup: FAKE_PROC_SYS,
        env: {FAKE_PROC_SYS: fake},
      })
      assert.deepEqual(readyWords(await s.api.readNode({name: 'sandbox'})), NO_CNI)
      assert.deepEqual(readyWords(await nextHeartbeat(s.api, 'sandbox')), NO_CNI, 'and stays so')

      const loopback = sandboxCniConfig(s.dataDir, {'flannel-backend': 'none'}, true)!
      await mkdir(join(loopback.path, '..'), {recursive: true})
      await writeFile(loopback.path, loopback.content)
      await waitFor(
        'the Node Ready',
        async () => (readyOf(await s.api.readNode({name: 'sandbox'}))?.status === 'True' ? true : undefined),
        15_000,
      )
    })

    it('dials the advertised address after registering, in k3s words while it is dark, and stays Ready', async () => {
      const fake = await fakeProcSys(Object.fromEntries(TUNABLES.map(([n, v]) => [n, String(v)])))
      const advertisePort = await freePort()
      const s = await startServer(
        ['--node-name', 'sandbox', '--advertise-address', '127.0.0.2', '--advertise-port', String(advertisePort)],
        {setup: FAKE_PROC_SYS, env: {FAKE_PROC_SYS: fake}},
      )
      const url = `wss://127.0.0.2:${advertisePort}/v1-k3s/connect`
      const out = await waitForOutput(
        s.proc,
        new RegExp(
          `level=error msg="Remotedialer proxy error; reconnecting..." error="dial tcp 127.0.0.2:${advertisePort}: connect: connection refused" url="${url}"`,
        ),
      )
      assert.ok(out.indexOf('Successfully registered node') < out.indexOf('Remotedialer'), 'registers first')
      const before = readyOf(await s.api.readNode({name: 'sandbox'}))
      await waitFor(
        'a heartbeat while the advertised address is dark',
        async () => {
          const r = readyOf(await s.api.readNode({name: 'sandbox'}))
          return r?.status === 'True' && String(r.lastHeartbeatTime) !== String(before?.lastHeartbeatTime)
            ? true
            : undefined
        },
        15_000,
      )
      await forward('127.0.0.2', advertisePort, s.port)
      await waitForOutput(s.proc, new RegExp(`Stopped tunnel to 127.0.0.1:${s.port}`))
      assert.match(s.proc.output(), new RegExp(`level=info msg="Connecting to proxy" url="${url}"`))
    })

    it('fails like containerd where overlay is refused, and --snapshotter=native skips the check', async () => {
      const dir = await tempDir('standin-overlay-')
      for (const d of ['l', 'u', 'w', 'm']) await mkdir(join(dir, d))
      const fake = await fakeProcSys(Object.fromEntries(TUNABLES.map(([n, v]) => [n, String(v)])))
      // an overlay upper dir cannot live on overlayfs: a real mount(2) refusal
      const setup = `${FAKE_PROC_SYS}; mount -t overlay overlay -o lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w ${dir}/m`
      const args = (port: number, ...extra: string[]) => [
        'server',
        '--data-dir',
        `${dir}/m/data`,
        '--https-listen-port',
        String(port),
        '--bind-address',
        '127.0.0.1',
        '--write-kubeconfig',
        `${dir}/kc.yaml`,
        ...extra,
      ]
      const refused = standinPrivate(setup, args(await freePort()), {FAKE_PROC_SYS: fake})
      assert.equal((await refused.exited).code, 1)
      assert.match(
        refused.output(),
        new RegExp(
          `level=fatal msg="failed to start containerd: \\\\"overlayfs\\\\" snapshotter cannot be enabled for \\\\"${dir}/m/data/agent/containerd\\\\", try using \\\\"fuse-overlayfs\\\\" or \\\\"native\\\\": failed to mount overlay: invalid argument"`,
        ),
      )
      const native = standinPrivate(setup, args(await freePort(), '--snapshotter=native'), {FAKE_PROC_SYS: fake})
      await waitForOutput(native, /k3s is up and running/)
    })

    it("fails on this host's own /proc/sys exactly where the kubelet would have to write (a read-only view)", async () => {
      const expected: string[] = []
      for (const [name, want] of TUNABLES) {
        const value = hostBefore[name]
        if (value === null) expected.push(`open /proc/sys/${name}: no such file or directory`)
        else if (Number(value.trim()) !== want) expected.push(`open /proc/sys/${name}: read-only file system`)
      }
      const dir = await tempDir('standin-host-')
      const args = [
        'server',
        '--snapshotter=native',
        '--data-dir',
        `${dir}/data`,
        '--https-listen-port',
        String(await freePort()),
        '--bind-address',
        '127.0.0.1',
        '--write-kubeconfig',
        `${dir}/kc.yaml`,
      ]
      const p = standinPrivate(READONLY_PROC_SYS, args)
      if (expected.length === 0) {
        await waitForOutput(p, /k3s is up and running/)
        return
      }
      assert.equal((await p.exited).code, 1)
      const err = expected.length === 1 ? expected[0] : `[${expected.join(', ')}]`
      assert.ok(
        p.output().includes(`level=fatal msg="Failed to start ContainerManager" err=${JSON.stringify(err)}`),
        p.output(),
      )
    })

    it('names a missing tunable as the kubelet does', async () => {
      const fake = await fakeProcSys({
        ...Object.fromEntries(TUNABLES.map(([n, v]) => [n, String(v)])),
        'vm/panic_on_oom': null,
      })
      const dir = await tempDir('standin-missing-')
      const p = standinPrivate(
        FAKE_PROC_SYS,
        [
          'server',
          '--data-dir',
          `${dir}/data`,
          '--https-listen-port',
          String(await freePort()),
          '--bind-address',
          '127.0.0.1',
          '--write-kubeconfig',
          `${dir}/kc.yaml`,
        ],
        {FAKE_PROC_SYS: fake},
      )
      assert.equal((await p.exited).code, 1)
      assert.match(
        p.output(),
        /level=fatal msg="Failed to start ContainerManager" err="open \/proc\/sys\/vm\/panic_on_oom: no such file or directory"/,
      )
    })
  })

  describe('inside real gVisor', () => {
    beforeEach(function () {
      requireGvisor(this)
    })

    it("fails on gVisor's /proc/sys, and on its missing /dev/kmsg once /proc/sys is faked", async () => {
      const dir = await tempDir('standin-gvisor-')
      const args = (n: string) => [
        STANDIN,
        'server',
        '--snapshotter=native',
        '--data-dir',
        `${dir}/${n}`,
        '--https-listen-port',
        '16443',
        '--bind-address',
        '127.0.0.1',
        '--write-kubeconfig',
        `${dir}/${n}.yaml`,
      ]
      const bare = await runInGvisor(args('bare'), {cwd: dir, timeoutMs: 60_000})
      assert.equal(bare.code, 1, bare.stderr)
      assert.match(
        bare.stderr,
        /level=fatal msg="Failed to start ContainerManager" err="\[.*open \/proc\/sys\/vm\/panic_on_oom: no such file or directory.*\]"/,
      )

      const fake = await fakeProcSys(Object.fromEntries(TUNABLES.map(([n, v]) => [n, String(v)])))
      const faked = await runInGvisor(
        ['sh', '-c', 'set -e; mount --bind "$0" /proc/sys; exec "$@"', fake, ...args('faked')],
        {cwd: dir, timeoutMs: 60_000},
      )
      assert.equal(faked.code, 1, faked.stderr)
      assert.match(
        faked.stderr,
        /level=fatal msg="Failed to start OOM watcher" err="open \/dev\/kmsg: no such file or directory"/,
      )
    })
  })
})
