import type {Logger} from 'pino'

import type {Rule} from '../../interceptor/index.js'
import type {ControlPlaneSettings, NetworkSettings} from '../../inventory/model.js'
import type {WorkaroundName} from '../../inventory/schema.js'

/**
 * One workaround of docs/architecture.md, "Workarounds": a blocker seen in gVisor-like sandboxes, a probe that finds it on
 * this machine, and the remedy. `apply` returns a JSON record of exactly what it changed; `undo` needs
 * nothing but that record, so `hybrid down` can undo after hybrid itself crashed.
 */
export interface Workaround {
  readonly id: WorkaroundName
  /** The blocker, one line (as in the preflight table). */
  readonly blocker: string
  /** The remedy `up` applies, one line. */
  readonly remedy: string
  /** k3s's own fatal words for this blocker: a k3s that dies with a matching line is diagnosed as missing this workaround. */
  readonly failurePattern?: RegExp
  /** Whether it concerns this control plane at all (e.g. kubelet workarounds not when agentless). */
  appliesTo(ctx: WorkaroundContext): boolean
  /** Is the blocker present here? Time-limited; leaves nothing behind. */
  probe(ctx: WorkaroundContext): Promise<ProbeFinding>
  /**
   * What `apply` is about to change, read without changing anything; recorded before `apply` starts, so
   * that a crash inside it is undone from this record (for workarounds that change the machine outside
   * the cluster's state directory, which `down` removes whole).
   */
  intent?(ctx: WorkaroundContext): Promise<AppliedRecord>
  /** Change the machine (idempotent); the record is stored in the state file before k3s starts. */
  apply(ctx: WorkaroundContext): Promise<AppliedRecord>
  /** Undo from the record alone (idempotent: undoing twice, or what was never done, is fine). */
  undo(record: AppliedRecord, logger?: Logger): Promise<void>
  /** What the remedy adds to k3s's config.yaml (keys are k3s flag names; lists append). */
  serverConfig(ctx: WorkaroundContext): ServerConfigFragment
  /** Interceptor rules the k3s server must run under (procsys). */
  interceptRules?(ctx: WorkaroundContext, record: AppliedRecord): Rule[]
  /** Environment the k3s server must run with (iptables: PATH order). */
  environment?(ctx: WorkaroundContext, record: AppliedRecord): Record<string, string>
}

export interface WorkaroundContext {
  /** k3s --data-dir of this control plane (absolute). */
  readonly dataDir: string
  /** false: agentless server (--disable-agent). */
  readonly agent: boolean
  readonly networkMode: 'tunnel' | 'direct'
  /** A directory owned by this cluster's state where workarounds keep files (fake trees, PATH dirs). */
  readonly workDir: string
  readonly logger?: Logger
  /** The k3s binary `up` runs (cnibin makes k3s unpack its bundled binaries before the first start). */
  readonly k3sBinary?: string
  /** Aborted at a probe's time limit: the probe stops its child processes and cleans up. */
  readonly signal?: AbortSignal
}

/**
 * The workarounds' view of a control plane, from its settings: an inventory's, or those a state stored
 * (where an older state lacks one, the inventory's default). The one place this object is built.
 */
export function workaroundContext(
  settings: {readonly controlPlane?: Partial<ControlPlaneSettings>; readonly network?: Partial<NetworkSettings>},
  where: {readonly dataDir: string; readonly workDir: string; readonly logger?: Logger},
): WorkaroundContext {
  return {
    dataDir: where.dataDir,
    agent: settings.controlPlane?.agent ?? true,
    networkMode: settings.network?.mode ?? 'tunnel',
    workDir: where.workDir,
    ...(where.logger ? {logger: where.logger} : {}),
  }
}

export interface ProbeFinding {
  /** The blocker is present on this machine. */
  readonly found: boolean
  /** What the probe saw, one line (an errno text, a filesystem type, …). */
  readonly evidence: string
  /**
   * The blocker is present and the remedy cannot work on this machine, and why (one sentence): e.g.
   * procsys when ptrace is forbidden, kmsg without root. Preflight reports it as `none-available`.
   */
  readonly unremediable?: string
  /** The probe's facts as JSON (for `preflight --json`), including any scratch paths it used. */
  readonly details?: Record<string, unknown>
}

/** What `apply` did: JSON only, stored in the state file. */
export interface AppliedRecord {
  readonly id: WorkaroundName
  readonly details: Record<string, unknown>
}

export type ServerConfigValue = string | number | boolean | string[]
export type ServerConfigFragment = Readonly<Record<string, ServerConfigValue>>
