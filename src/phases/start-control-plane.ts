import {type ChildProcess, spawn} from 'node:child_process'
import {closeSync, openSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import {k3sKubeconfigPath, sandboxNodeName, serverConfigPath} from '../k3s/server-config.js'
import type {Phase} from '../plan/index.js'
import type {K3sFailure} from '../sandbox/k3s-failure.js'
import {restartPolicyFromEnv} from '../sandbox/restart-policy.js'
import {Supervisor, type SupervisorEvent} from '../sandbox/supervisor.js'
import {type LaunchSpec, updateState} from '../state/cluster-state.js'
import {tailLines} from '../state/log-tail.js'
import {ownCommandLine, waitGone} from '../state/processes.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {CONTROL_PLANE_HOST, type ControlPlaneContext, type SupervisorHandle} from './control-plane-context.js'

/**
 * Start `k3s server --config …` under the supervisor: in this process (foreground `up`, and the detached
 * supervisor itself), or in a detached child (`up --detach`) that outlives this one. The launch spec is
 * recorded first, so the child, `status` and `down` know exactly what runs.
 */
export const startControlPlane: Phase<ControlPlaneContext> = {
  title: 'start the k3s server',
  shouldRun: (ctx) => !ctx.alreadyUp,
  async run(ctx) {
    const launch = ctx.launch ?? launchSpec(ctx)
    ctx.launch = launch
    if (ctx.dryRun) {
      await ctx.wet(
        CONTROL_PLANE_HOST,
        `start ${launch.binary} ${launch.args.join(' ')}${launch.rules.length > 0 ? ' under the interceptor' : ''}${ctx.detach ? ' under a detached supervisor' : ''}`,
        () => {},
      )
      return
    }
    await updateState(ctx.cluster, (s) => ({...s, launch, phase: 'starting'}))
    ctx.supervisor = await ctx.wet(
      CONTROL_PLANE_HOST,
      `start the k3s server${launch.rules.length > 0 ? ' under the interceptor' : ''}${ctx.detach ? ' under a detached supervisor' : ''}`,
      () => (ctx.detach && !ctx.detachedSupervisor ? spawnDetachedSupervisor(ctx) : startLocalSupervisor(ctx)),
    )
  },
  async cleanUp(ctx) {
    if (!ctx.supervisor) return
    await ctx.supervisor.stop()
    ctx.supervisor = undefined
  },
}

/** Binary, arguments, interceptor rules and environment, from the applied workarounds' records. */
function launchSpec(ctx: ControlPlaneContext): LaunchSpec {
  const inventory = ctx.inventory!
  const wctx = ctx.workaroundContext!
  const dataDir = inventory.controlPlane.dataDir
  const rules: unknown[] = []
  const env: Record<string, string> = {}
  for (const workaround of ctx.selected ?? []) {
    const record = ctx.state?.workarounds.find((r) => r.id === workaround.id)
    if (!record) continue // under --dry-run nothing was applied
    rules.push(...(workaround.interceptRules?.(wctx, record) ?? []))
    Object.assign(env, workaround.environment?.(wctx, record) ?? {})
  }
  return {
    binary: ctx.k3s?.path ?? inventory.k3s.binary ?? `k3s ${inventory.k3s.version}`,
    args: ['server', '--config', serverConfigPath(dataDir), ...(ctx.serverConfig?.commandLine ?? [])],
    rules,
    env,
    k3sKubeconfig: k3sKubeconfigPath(dataDir),
    ...(inventory.controlPlane.agent ? {nodeName: sandboxNodeName(inventory.name)} : {}),
  }
}

/** How long the first start may take to become ready: HYBRID_READY_TIMEOUT_SECONDS, default 5 minutes. */
function readyTimeoutMs(): number {
  const seconds = Number(process.env.HYBRID_READY_TIMEOUT_SECONDS)
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 300_000
}

/** The supervisor in this process: it records itself as the cluster's owner, and each k3s run in the state. */
export async function startLocalSupervisor(ctx: ControlPlaneContext): Promise<SupervisorHandle> {
  const {cluster, paths} = ctx
  const supervisor = new Supervisor({
    launch: ctx.launch!,
    logFile: paths.k3sLog,
    countersFile: paths.counters,
    policy: restartPolicyFromEnv(),
    readyTimeoutMs: readyTimeoutMs(),
    logger: ctx.logger,
    onEvent: (event) => recordEvent(cluster, event),
  })
  const startedAt = new Date().toISOString()
  await updateState(cluster, (s) => ({
    ...s,
    supervisor: {pid: process.pid, startedAt, detached: ctx.detachedSupervisor === true, argv: ownCommandLine()},
  }))
  await writeFileAtomic(paths.pidfile, `${process.pid}\n`, 0o600)
  void supervisor.start()
  return {pid: process.pid, detached: false, ready: supervisor.ready, stop: () => supervisor.stop(), local: supervisor}
}

/** Each k3s run and restart, in the state file (for `status`, and for `down` after a crash). */
async function recordEvent(cluster: string, event: SupervisorEvent): Promise<void> {
  const now = new Date().toISOString()
  if (event.type === 'started')
    await updateState(cluster, (s) => ({
      ...s,
      phase: s.phase === 'ready' ? 'ready' : 'starting',
      k3s: {pid: event.pid, startedAt: now, restarts: event.restarts},
    }))
  else if (event.type === 'ready') await updateState(cluster, (s) => ({...s, phase: 'ready'}))
  else if (event.type === 'restarting')
    await updateState(cluster, (s) => ({...s, k3s: s.k3s ? {...s.k3s, restarts: event.restarts} : s.k3s}))
}

/** Messages the detached supervisor sends its parent over the IPC channel. */
export type ChildMessage = {readonly type: 'ready'} | {readonly type: 'failed'; readonly failure: K3sFailure}

const CHILD_STOP_GRACE_MS = 45_000

/**
 * `up --detach`: the same `up` re-run as `up --supervise` in a new session, its output in the cluster's
 * supervisor log, reporting readiness (or why not) over IPC; this process returns once it is ready.
 */
function spawnDetachedSupervisor(ctx: ControlPlaneContext): SupervisorHandle {
  const runJs = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
  const logFd = openSync(ctx.paths.supervisorLog, 'a', 0o600)
  let child: ChildProcess
  try {
    child = spawn(
      process.execPath,
      [runJs, 'up', '--inventory', ctx.inventory!.file, '--supervise', '--log-format', 'json'],
      {
        detached: true,
        stdio: ['ignore', logFd, logFd, 'ipc'],
        env: process.env,
      },
    )
  } finally {
    closeSync(logFd)
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') resolve()
      else if (message.type === 'failed') reject(message.failure)
    })
    child.once('exit', async (code, signal) => {
      const logTail = await tailLines(ctx.paths.supervisorLog, 20)
      reject({
        kind: 'died',
        sentence: `the detached supervisor ${signal ? `was killed by ${signal}` : `exited with code ${code}`} before k3s became ready`,
        code,
        signal,
        logTail,
      } satisfies K3sFailure)
    })
  })
  ready.catch(() => {})
  return {
    pid: child.pid ?? -1,
    detached: true,
    ready,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const ended = await Promise.race([exited.then(() => true), waitGone(child.pid ?? -1, CHILD_STOP_GRACE_MS)])
      if (!ended) {
        ctx.logger.warn({pid: child.pid}, 'the detached supervisor did not stop in time; killing it')
        child.kill('SIGKILL')
        await exited
      }
    },
    release() {
      if (child.connected) child.disconnect()
      child.unref()
    },
  }
}
