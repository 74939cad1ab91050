import {messageOf} from '../errors.js'
import type {WorkaroundsSetting} from '../inventory/schema.js'
import {within} from '../util/processes.js'
import {describeFilesystem, type FilesystemFacts, probeFilesystem} from './probes/filesystem.js'
import {describeGvisor, type GvisorFacts, probeGvisor} from './probes/gvisor.js'
import {type PtraceFacts, probePtrace} from './probes/ptrace.js'
import {describeRoot, probeRoot, type RootFacts} from './probes/root.js'
import {probeSeccomp, type SeccompFacts} from './probes/seccomp.js'
import {formatSeconds, type Limited, probeLimitMs, withTimeLimit} from './probes/time-limit.js'
import {selectWorkarounds, WORKAROUNDS} from './workarounds/index.js'
import type {ProbeFinding, Workaround, WorkaroundContext} from './workarounds/workaround.js'

/**
 * `hybrid preflight` and `up`'s first step: every probe, each under its time limit, and for each
 * workaround what `up` would do about it under the inventory's setting. A row is `none-available` when
 * its blocker is present and its remedy cannot work here (ptrace forbidden, not root, …): then the
 * control plane cannot come up on this machine, and preflight exits 1 saying why.
 */
export type PreflightAction = 'apply' | 'skip' | 'none-available'

export interface PreflightRow {
  readonly id: string
  readonly blocker: string
  readonly found: boolean
  /** The probe hit its time limit (then `found` is assumed, so `auto` still applies the remedy). */
  readonly timedOut: boolean
  readonly evidence: string
  readonly remedy: string
  readonly action: PreflightAction
  /** Why this action, one short phrase. */
  readonly reason: string
  readonly details?: Record<string, unknown>
}

/** One line each for the summary, and the facts behind them for `--json`. */
export interface EnvironmentReport {
  readonly sandbox: string
  readonly user: string
  readonly filesystem: string
  readonly ptrace: string
  readonly seccomp: string
  readonly facts: {
    readonly gvisor?: GvisorFacts
    readonly root?: RootFacts
    readonly filesystem?: FilesystemFacts
    readonly ptrace?: PtraceFacts
    readonly seccomp?: SeccompFacts
  }
}

export interface PreflightReport {
  readonly dataDir: string
  readonly setting: WorkaroundsSetting
  readonly agent: boolean
  readonly networkMode: 'tunnel' | 'direct'
  readonly environment: EnvironmentReport
  readonly rows: readonly PreflightRow[]
  /** No blocker lacks a remedy. */
  readonly ok: boolean
  /** One sentence per blocker without a remedy here. */
  readonly problems: readonly string[]
}

export interface PreflightResult {
  readonly report: PreflightReport
  /** Each workaround's finding, by id (what `up` records). */
  readonly findings: ReadonlyMap<string, ProbeFinding>
  /** What `up` applies, in order. */
  readonly selected: readonly Workaround[]
}

export interface PreflightOptions {
  /** Default: every workaround (tests pass their own). */
  readonly workarounds?: readonly Workaround[]
  /** Per probe; default probeLimitMs(). */
  readonly limitMs?: number
  /** How long to wait for timed-out probes to clean up before returning; default 10 s. */
  readonly graceMs?: number
  /** false: skip the environment summary (unit tests of the table logic). */
  readonly environment?: boolean
}

export async function runPreflight(
  ctx: WorkaroundContext,
  setting: WorkaroundsSetting,
  options: PreflightOptions = {},
): Promise<PreflightResult> {
  const registry = options.workarounds ?? WORKAROUNDS
  const limitMs = options.limitMs ?? probeLimitMs()
  const cleanups: Promise<void>[] = []
  const limited = <T>(fn: (signal: AbortSignal) => Promise<T>): Promise<Limited<T>> =>
    withTimeLimit(limitMs, fn).then((r) => {
      cleanups.push(r.done)
      return r
    })

  const [environment, findingList] = await Promise.all([
    options.environment === false ? NOT_PROBED : probeEnvironment(ctx.dataDir, limited),
    Promise.all(registry.map((w) => probeOne(w, ctx, limited))),
  ])
  // Wait for the probes' clean-ups, but never longer than the grace period.
  await within(Promise.allSettled(cleanups), options.graceMs ?? 10_000)

  const findings = new Map(registry.map((w, i) => [w.id, findingList[i].finding] as const))
  const chosen = selectWorkarounds(setting, ctx, findings, registry)
  const rows = registry.map((w, i) => row(w, findingList[i], ctx, setting, chosen.includes(w)))
  const problems = rows
    .filter((r) => r.action === 'none-available')
    .map((r) => `${r.id}: ${r.blocker}, and ${r.reason}`)
  // A remedy that cannot work here is not applied (and not reported as applied): the problem says so.
  const selected = chosen.filter((w) => rows.find((r) => r.id === w.id)?.action !== 'none-available')
  const report: PreflightReport = {
    dataDir: ctx.dataDir,
    setting,
    agent: ctx.agent,
    networkMode: ctx.networkMode,
    environment,
    rows,
    ok: problems.length === 0,
    problems,
  }
  return {report, findings, selected}
}

interface Probed {
  readonly finding: ProbeFinding
  readonly timedOut: boolean
}

type Limiter = <T>(fn: (signal: AbortSignal) => Promise<T>) => Promise<Limited<T>>

async function probeOne(workaround: Workaround, ctx: WorkaroundContext, limited: Limiter): Promise<Probed> {
  try {
    const result = await limited((signal) => workaround.probe({...ctx, signal}))
    if (!result.timedOut) return {finding: result.value, timedOut: false}
    return {
      finding: {found: true, evidence: `probe timed out after ${formatSeconds(result.limitMs)} (assumed present)`},
      timedOut: true,
    }
  } catch (error) {
    return {finding: {found: true, evidence: `probe failed: ${messageOf(error)} (assumed present)`}, timedOut: false}
  }
}

function row(
  workaround: Workaround,
  probed: Probed,
  ctx: WorkaroundContext,
  setting: WorkaroundsSetting,
  selected: boolean,
): PreflightRow {
  const {finding, timedOut} = probed
  const applies = workaround.appliesTo(ctx)
  let action: PreflightAction
  let reason: string
  if (applies && finding.found && finding.unremediable) {
    action = 'none-available'
    reason = finding.unremediable
  } else if (selected) {
    action = 'apply'
    reason = setting === 'auto' ? 'found' : setting === 'all' ? 'workarounds: all' : 'listed in workarounds'
  } else {
    action = 'skip'
    if (!applies && setting !== 'none') reason = 'does not concern an agentless server'
    else if (setting === 'none') reason = 'workarounds: none'
    else if (Array.isArray(setting)) reason = 'not listed in workarounds'
    else reason = 'not found'
  }
  return {
    id: workaround.id,
    blocker: workaround.blocker,
    found: finding.found,
    timedOut,
    evidence: finding.evidence,
    remedy: workaround.remedy,
    action,
    reason,
    ...(finding.details ? {details: finding.details} : {}),
  }
}

const NOT_PROBED: EnvironmentReport = {
  sandbox: 'not probed',
  user: 'not probed',
  filesystem: 'not probed',
  ptrace: 'not probed',
  seccomp: 'not probed',
  facts: {},
}

/** The facts the table's rows rest on, each probed under its own limit. */
async function probeEnvironment(dataDir: string, limited: Limiter): Promise<EnvironmentReport> {
  const [gvisor, root, filesystem] = await Promise.all([
    limited(() => probeGvisor()),
    limited(() => probeRoot()),
    limited(() => probeFilesystem(dataDir)),
  ])
  const inGvisor = !gvisor.timedOut && gvisor.value.gvisor
  const [ptrace, seccomp] = await Promise.all([
    limited((signal) => probePtrace(signal)),
    limited(() => probeSeccomp(inGvisor)),
  ])
  const text = <T>(r: Limited<T>, describe: (v: T) => string): string =>
    r.timedOut ? `probe timed out after ${formatSeconds(r.limitMs)}` : describe(r.value)
  const value = <T>(r: Limited<T>): T | undefined => (r.timedOut ? undefined : r.value)
  return {
    sandbox: text(gvisor, describeGvisor),
    user: text(root, describeRoot),
    filesystem: text(filesystem, describeFilesystem),
    ptrace: text(
      ptrace,
      (p) => `${p.permitted === true ? 'permitted' : p.permitted === false ? 'forbidden' : 'unknown'}: ${p.evidence}`,
    ),
    seccomp: text(
      seccomp,
      (s) => `${s.available === true ? 'available' : s.available === false ? 'unavailable' : 'unknown'}: ${s.evidence}`,
    ),
    facts: {
      gvisor: value(gvisor),
      root: value(root),
      filesystem: value(filesystem),
      ptrace: value(ptrace),
      seccomp: value(seccomp),
    },
  }
}
