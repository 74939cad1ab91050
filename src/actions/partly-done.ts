import {HybridError} from '../errors.js'
import type {HostOutcome} from '../plan/index.js'

/**
 * A run that finished, but not for every worker: exit 3 when some hosts are done and some failed (1
 * when none is done). The sentence names the failed ones; the table printed before it says why, and
 * under --json the whole result comes with the error. A re-run resumes.
 */
export class HostsFailed extends HybridError {
  constructor(
    readonly result: Record<string, unknown>,
    hosts: readonly HostOutcome[],
    retry: string,
  ) {
    const failed = hosts.filter((h) => h.status === 'failed')
    const done = hosts.filter((h) => h.status === 'ok').length
    super(
      done > 0 ? 'PARTLY_DONE' : 'WORKERS_NOT_READY',
      `${failed.length} of ${hosts.length} workers failed (${failed.map((h) => h.host).join(', ')}), for the reasons listed; ${retry} again resumes them`,
      {exitCode: done > 0 ? 3 : 1},
    )
    this.name = 'HostsFailed'
  }

  override jsonDocument(): Record<string, unknown> {
    return {...this.result, error: this.toJSON()}
  }
}

/** Throws HostsFailed when a worker failed; `shown` is what --json prints with the error. */
export function throwIfHostsFailed(hosts: readonly HostOutcome[], shown: Record<string, unknown>, retry: string): void {
  if (hosts.some((h) => h.status === 'failed')) throw new HostsFailed(shown, hosts, retry)
}
