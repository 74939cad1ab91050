import {registerSecret} from '../log/redact.js'
import type {Host, UploadOptions} from '../remote/host.js'
import {type AgentSpec, agentConfig} from './agent-config.js'
import {K3S_AGENT_DIRS, killallAgent} from './killall.js'
import {type AgentService, SERVICES, type ServiceKind} from './service.js'
import {differingFiles, removePaths, type WorkerFile, writeWorkerFiles} from './worker-files.js'
import {WORKER_PATHS} from './worker-paths.js'

/**
 * The agent's steps on one worker, as the join phases call them. Each is safe to repeat and says whether
 * it changed anything, so a second `hybrid up` reports "already" and restarts nothing.
 */

/**
 * What hybrid put on a worker for its agent: enough to remove it all from this record alone, also after
 * a crash halfway through an install. Written to the state before the first change.
 */
export interface AgentRecord {
  readonly service: ServiceKind
  /** Files: config, token, binary, and the service's own (unit or script, env file, pidfile, log). */
  readonly files: readonly string[]
  /** Directories removed whole: the agent's data dir, k3s's run dir (containerd's state) and hybrid's own. */
  readonly directories: readonly string[]
  /** Paths of the install that were there before hybrid's first change: never removed (not in the lists above). */
  readonly kept?: readonly string[]
}

export function agentRecord(service: AgentService, spec: Pick<AgentSpec, 'dataDir'>): AgentRecord {
  return {
    service: service.kind,
    files: [WORKER_PATHS.config, WORKER_PATHS.token, WORKER_PATHS.nodePassword, WORKER_PATHS.binary, ...service.paths],
    directories: [spec.dataDir ?? WORKER_PATHS.dataDir, WORKER_PATHS.runDir, WORKER_PATHS.hybridDir],
  }
}

/**
 * The k3s binary at /usr/local/bin/k3s (0755 root's): nothing is sent when the file there already has its
 * sha256. True when it was uploaded.
 */
export async function uploadK3s(
  host: Host,
  localPath: string,
  options: Pick<UploadOptions, 'onProgress' | 'sha256' | 'sha256There' | 'contents'> = {},
): Promise<boolean> {
  const result = await host.upload(localPath, WORKER_PATHS.binary, {...options, mode: 0o755, owner: '0:0', sudo: true})
  return !result.skipped
}

/**
 * config.yaml and the token file, and the node password when given, all 0600 (a dry run compares them with
 * differingFiles, and names only paths).
 */
export function agentFiles(spec: AgentSpec, token: string, nodePassword?: string): WorkerFile[] {
  registerSecret(token)
  if (nodePassword) registerSecret(nodePassword)
  return [
    {path: WORKER_PATHS.config, content: agentConfig(spec), mode: 0o600},
    {path: WORKER_PATHS.token, content: `${token}\n`, mode: 0o600},
    ...(nodePassword ? [{path: WORKER_PATHS.nodePassword, content: `${nodePassword}\n`, mode: 0o600}] : []),
  ]
}

/**
 * config.yaml and the token file in place; true when either was written. `differing`: those the caller
 * just found not in place (differingFiles), so they are not read again.
 */
export async function writeAgentFiles(
  host: Host,
  spec: AgentSpec,
  token: string,
  differing?: readonly WorkerFile[],
  nodePassword?: string,
): Promise<boolean> {
  const files = differing ?? (await differingFiles(host, agentFiles(spec, token, nodePassword)))
  await writeWorkerFiles(host, files)
  return files.length > 0
}

/** The service's files, and the init system told of them; true when anything changed. `differing` as above. */
export async function installService(
  host: Host,
  service: AgentService,
  spec: AgentSpec,
  differing?: readonly WorkerFile[],
): Promise<boolean> {
  const files = differing ?? (await differingFiles(host, service.files(spec)))
  await writeWorkerFiles(host, files)
  const registered = await service.install(host, {changed: files.length > 0})
  return files.length > 0 || registered
}

export type StartResult = 'started' | 'restarted' | 'already'

/**
 * Start the agent, or restart it when what it runs changed (`changed`: its config, token, binary or
 * service files were written in this run); a running agent with nothing changed is left alone.
 */
export async function startAgent(host: Host, service: AgentService, changed: boolean): Promise<StartResult> {
  const running = await service.running(host)
  if (running && !changed) return 'already'
  await service.start(host, {restart: running})
  return running ? 'restarted' : 'started'
}

/** Print the paths that exist. */
const EXISTING = 'for p; do if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi; done'

/**
 * Stop and remove the agent from its record alone: the service, then every recorded file and directory.
 * Safe to repeat; true when anything was there to remove.
 */
export async function uninstallAgent(host: Host, record: AgentRecord): Promise<boolean> {
  const paths = [...record.files, ...record.directories]
  const existing = (
    await host.check(['sh', '-c', EXISTING, 'sh', ...paths, ...K3S_AGENT_DIRS], {sudo: true})
  ).stdout.trim()
  const service = SERVICES[record.service]
  const wasRunning = await service.running(host)
  await service.uninstall(host)
  // What the running agent made (shims and containers, mounts, netns, links, rules, the kubelet's dirs), as
  // k3s's killall and uninstall scripts remove it; the record's first directory is the agent's data dir.
  await killallAgent(host, record.directories[0] ?? WORKER_PATHS.dataDir)
  await removePaths(host, paths)
  // The config dir goes too when hybrid's files were all it held (an admin's registries.yaml keeps it).
  await host.run(['rmdir', '--ignore-fail-on-non-empty', WORKER_PATHS.configDir], {sudo: true})
  return wasRunning || existing !== ''
}
