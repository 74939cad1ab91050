import type {WorkerSpec} from '../inventory/model.js'
import type {HostFacts} from '../remote/facts.js'
import type {Host} from '../remote/host.js'
import type {AgentSpec} from './agent-config.js'
import {noneService} from './none.js'
import {openrcService} from './openrc.js'
import {systemdService} from './systemd.js'
import type {WorkerFile} from './worker-files.js'

/** How the agent is kept running on a worker: the init system's service, or hybrid's own supervisor. */
export type ServiceKind = 'systemd' | 'openrc' | 'none'

/**
 * One face for every init system. Every method is safe to repeat and works from the kind alone (no
 * state of an earlier run), so a clean-up after a crash can use it.
 */
export interface AgentService {
  readonly kind: ServiceKind
  /** The files that define the service for this agent (unit, env file, script). */
  files(spec: AgentSpec): readonly WorkerFile[]
  /** Every path the service may leave on a worker (files, pidfile, log), for the record and uninstall. */
  readonly paths: readonly string[]
  /**
   * Make the init system read the files when they `changed`, and start the agent at boot where it can.
   * True when it changed something.
   */
  install(host: Host, options: {changed: boolean}): Promise<boolean>
  /** Start the agent; with `restart`, stop a running one first so it reads its files again. */
  start(host: Host, options: {restart: boolean}): Promise<void>
  running(host: Host): Promise<boolean>
  /** Stop the agent; true when it was running. */
  stop(host: Host): Promise<boolean>
  /** The agent's last `lines` log lines (to say why its Node is not Ready); [] when there is no log. */
  recentLog(host: Host, lines: number): Promise<string[]>
  /** Stop it, take it out of the init system and remove its paths (not the agent's config, token or data). */
  uninstall(host: Host): Promise<void>
}

export const SERVICES: Readonly<Record<ServiceKind, AgentService>> = {
  systemd: systemdService,
  openrc: openrcService,
  none: noneService,
}

/** The service a worker gets: its `service` setting, or for 'auto' the init system that runs there. */
export function chooseService(setting: WorkerSpec['service'], facts: Pick<HostFacts, 'init'>): AgentService {
  return SERVICES[setting === 'auto' ? facts.init.system : setting]
}
