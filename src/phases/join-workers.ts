import {readFile} from 'node:fs/promises'

import type {KubeConfig} from '@kubernetes/client-node'

import {apiServerUrl} from '../agent/agent-config.js'
import {parseK3sToken} from '../agent/api-check.js'
import {acquireK3s, type AcquiredBinary} from '../k3s/acquire.js'
import {k3sAgentTokenPath, k3sServerTokenPath} from '../k3s/server-config.js'
import {HybridError, messageOf} from '../errors.js'
import {kubeConfigFromFile} from '../kube/client.js'
import {registerSecret} from '../log/redact.js'
import {forEachHost, type Phase} from '../plan/index.js'
import {SshConnections} from '../remote/connections.js'
import type {K3sArch} from '../remote/facts.js'
import {readTunnels} from '../state/tunnel-status.js'
import {CONTROL_PLANE_HOST, type ClusterContext, type InventoryInput, type WorkerConnections} from './context.js'
import {checkApiStep} from './join/check-api.js'
import {connectWorker} from './join/connect.js'
import {K3sDistribution} from './join/distribute-k3s.js'
import {type JoinRun, type JoinStep, type JoinTarget, stepDeadlineMs} from './join/join-target.js'
import {installServiceStep} from './join/install-service.js'
import {openTunnel} from './join/open-tunnel.js'
import {startAgentStep} from './join/start-agent.js'
import {uploadK3s} from './join/upload-k3s.js'
import {waitNodeReady} from './join/wait-node.js'
import {writeAgentExtrasStep} from './join/write-agent-extras.js'
import {writeAgentFilesStep} from './join/write-agent-files.js'

/** The steps of joining one worker, in order; each is safe to repeat and changes only what is missing. */
export const JOIN_STEPS: readonly JoinStep[] = [
  connectWorker,
  openTunnel,
  checkApiStep,
  uploadK3s,
  writeAgentFilesStep,
  writeAgentExtrasStep,
  installServiceStep,
  startAgentStep,
  waitNodeReady,
]

/** Which workers to join: all of the inventory's (`up`), or those named (`workers add`). */
export interface JoinSelection {
  readonly joinOnly?: readonly string[]
}

/** join-workers gives: the workers that went through every step. */
export interface WorkersJoined {
  readonly joined: readonly string[]
}

/**
 * Join the inventory's workers to the running control plane, up to spec.concurrency at once, each
 * worker through every step without waiting for the others; a worker that fails is recorded as failed
 * (exit 3 when others joined) and the rest go on.
 */
export const joinWorkers: Phase<ClusterContext & InventoryInput & JoinSelection & WorkerConnections, WorkersJoined> = {
  title: 'join the workers',
  shouldRun: (ctx) => selected(ctx).length > 0 || {skip: 'the inventory names no worker'},
  async run(ctx) {
    // The connections *check the workers* made, when it ran: each worker is logged into once per run.
    const connections = ctx.workerConnections ?? new SshConnections()
    const workers = selected(ctx)
    const distribution = new K3sDistribution(ctx.inventory.k3s.distribute, ctx.inventory.k3s, workers)
    try {
      const run = await joinRun(ctx, connections, distribution)
      const targets = workers.map((worker): JoinTarget => ({run, worker}))
      const done = await forEachHost(ctx, targets, {
        name: (t) => t.worker.name,
        steps: JOIN_STEPS.map((step) => ({
          title: step.title,
          run: async (t: JoinTarget, h) => {
            try {
              await step.run(t, h)
            } catch (error) {
              // A worker that fails (or is skipped) waits for no peer, and one that would serve serves nobody.
              distribution.left(t.worker.name)
              throw error
            }
          },
          deadlineMs: (t: JoinTarget) => step.deadlineMs?.(t) ?? stepDeadlineMs(t),
        })),
        // A step past its deadline lets go of the worker's connection: whatever it still runs there fails.
        onDeadline: (t) => t.host?.close(),
      })
      return {joined: done.map((t) => t.worker.name)}
    } finally {
      await distribution.stopAll()
      await connections.closeAll()
    }
  },
}

function selected(ctx: InventoryInput & JoinSelection) {
  const only = ctx.joinOnly
  return ctx.inventory.workers.filter((w) => !only || only.includes(w.name))
}

/** Environment variables that shorten the waits (tests, slow machines). */
function seconds(name: string, fallback: number): number {
  const value = Number(process.env[name])
  return (Number.isFinite(value) && value > 0 ? value : fallback) * 1000
}

export async function joinRun(
  ctx: ClusterContext & InventoryInput,
  connections: SshConnections,
  distribution: K3sDistribution,
): Promise<JoinRun> {
  const {inventory} = ctx
  const {advertiseAddress, apiPort, dataDir} = inventory.controlPlane
  const binaries = new Map<K3sArch, Promise<AcquiredBinary | undefined>>()
  const bytes = new Map<string, Promise<Buffer>>()
  let kube: KubeConfig | undefined
  return {
    ctx,
    cluster: ctx.cluster,
    inventory,
    connections,
    server: apiServerUrl(advertiseAddress, apiPort),
    token: await joinToken(dataDir, ctx.dryRun),
    kube: () => (kube ??= kubeConfigFromFile(ctx.paths.kubeconfig)),
    distribution,
    binary(arch) {
      let binary = binaries.get(arch)
      if (!binary) {
        // A local spec.k3s.binary is taken for every architecture (the user chose it).
        const get = () => {
          if (arch === 'arm' && !inventory.k3s.binary)
            throw new HybridError(
              'K3S_ARCH_UNSUPPORTED',
              `hybrid fetches k3s for amd64 and arm64 only; for arm workers set spec.k3s.binary to an arm build`,
            )
          return acquireK3s(inventory.k3s, {
            arch: arch === 'arm' ? undefined : arch,
            signal: ctx.signal,
            logger: ctx.logger,
          })
        }
        binary = inventory.k3s.binary
          ? get()
          : ctx.wet(CONTROL_PLANE_HOST, `get k3s ${inventory.k3s.version} for ${arch}`, get)
        binaries.set(arch, binary)
      }
      return binary
    },
    binaryBytes(binary) {
      let read = bytes.get(binary.path)
      if (!read) bytes.set(binary.path, (read = readFile(binary.path)))
      return read
    },
    async tunnelStatus(worker) {
      return (await readTunnels(ctx.cluster))?.tunnels.find((t) => t.worker === worker)
    },
    timeouts: {
      nodeReadyMs: seconds('HYBRID_NODE_READY_TIMEOUT_SECONDS', 300),
      tunnelMs: seconds('HYBRID_TUNNEL_TIMEOUT_SECONDS', 60),
    },
  }
}

/**
 * The agent token k3s wrote into its data dir (K10<CA hash>::node:<secret>) from hybrid's agent token
 * file: the agents check the CA hash, so a worker never joins another cluster by mistake, and its secret
 * gives the k3s:agent role only. A k3s started without an agent token writes the server's secret there:
 * that is refused rather than sent to a worker. Registered as a secret before anything logs.
 */
async function joinToken(dataDir: string, dryRun: boolean): Promise<string | undefined> {
  const read = async (file: string) => {
    try {
      return (await readFile(file, 'utf8')).trim()
    } catch (error) {
      if (dryRun) return undefined
      throw new HybridError(
        'CLUSTER_NOT_UP',
        `cannot read the join token k3s writes (${file}): ${messageOf(error)}; is the control plane up?`,
      )
    }
  }
  const [agent, server] = [await read(k3sAgentTokenPath(dataDir)), await read(k3sServerTokenPath(dataDir))]
  for (const token of [agent, server]) {
    if (!token) continue
    registerSecret(token)
    registerSecret(parseK3sToken(token).password)
  }
  if (!agent || !server) return undefined
  if (parseK3sToken(agent).password === parseK3sToken(server).password)
    throw new HybridError(
      'AGENT_TOKEN_MISSING',
      `the k3s server runs without an agent token of its own (${k3sAgentTokenPath(dataDir)} holds the server's secret), and workers never get that; \`hybrid down\`, then \`hybrid up\`, starts it with one`,
    )
  return agent
}
