/**
 * When the supervisor restarts k3s after it died (having been ready once): with exponential backoff, at
 * most `limit` times within a sliding window of `windowMs`, then it gives up (docs/architecture.md, "The supervisor").
 */

export interface RestartPolicy {
  /** Restarts allowed within `windowMs` before giving up. */
  readonly limit: number
  readonly windowMs: number
  /** First delay; doubled for each restart already in the window, capped at `maxBackoffMs`. */
  readonly backoffMs: number
  readonly maxBackoffMs: number
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  limit: 5,
  windowMs: 600_000,
  backoffMs: 1000,
  maxBackoffMs: 60_000,
}

/** The policy with overrides from HYBRID_RESTART_LIMIT, HYBRID_RESTART_WINDOW_SECONDS and HYBRID_RESTART_BACKOFF_MS. */
export function restartPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): RestartPolicy {
  const number = (name: string, fallback: number, scale = 1): number => {
    const value = Number(env[name])
    return env[name] !== undefined && Number.isFinite(value) && value >= 0 ? value * scale : fallback
  }
  return {
    limit: number('HYBRID_RESTART_LIMIT', DEFAULT_RESTART_POLICY.limit),
    windowMs: number('HYBRID_RESTART_WINDOW_SECONDS', DEFAULT_RESTART_POLICY.windowMs, 1000),
    backoffMs: number('HYBRID_RESTART_BACKOFF_MS', DEFAULT_RESTART_POLICY.backoffMs),
    maxBackoffMs: DEFAULT_RESTART_POLICY.maxBackoffMs,
  }
}

/** What to do after a death: wait this long and start again, or stop trying. */
export type RestartDecision = {readonly restartInMs: number} | {readonly giveUp: true}

/** The deaths seen within the policy's window, and the decision each new one leads to. No clock of its own. */
export class RestartBudget {
  private readonly deaths: number[] = []

  constructor(readonly policy: RestartPolicy) {}

  /** Record a death at `now` (ms since the epoch, or any monotonic origin) and decide. */
  afterDeath(now: number): RestartDecision {
    this.deaths.push(now)
    while (this.deaths.length > 0 && this.deaths[0] < now - this.policy.windowMs) this.deaths.shift()
    const recent = this.deaths.length
    if (recent > this.policy.limit) return {giveUp: true}
    return {restartInMs: Math.min(this.policy.backoffMs * 2 ** (recent - 1), this.policy.maxBackoffMs)}
  }
}
