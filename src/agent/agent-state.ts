import {messageOf} from '../errors.js'
import {SshConnections} from '../remote/connections.js'
import {withDeadline} from '../util/abort.js'
import type {WorkerRecord} from '../state/worker-records.js'
import {SERVICES} from './service.js'

/** Whether a worker's agent runs, as its init system (or hybrid's supervisor) says over SSH. */
export interface AgentState {
  readonly state: 'running' | 'stopped' | 'unreachable'
  /** Why the worker could not be asked (unreachable). */
  readonly error?: string
}

/** `status` and `workers list` wait this long at most for a worker's SSH, and for each command there. */
const CONNECT_SECONDS = 5

/** …and this long for the whole answer of one worker, so `status` answers within 10 s whatever a worker does. */
const ASK_SECONDS = 8

/**
 * Ask every recorded worker with an installed agent whether it runs, all at once, with the record's SSH
 * settings (host key policy included) and a short connect timeout. Reads only.
 */
export async function agentStates(records: readonly WorkerRecord[]): Promise<Map<string, AgentState>> {
  const connections = new SshConnections()
  try {
    const asked = await Promise.all(
      records.flatMap((record) => {
        const agent = record.installed.agent
        if (!agent) return []
        const spec = {
          ...record.spec,
          ssh: {
            ...record.spec.ssh,
            connectTimeoutSeconds: Math.min(record.spec.ssh.connectTimeoutSeconds, CONNECT_SECONDS),
            commandTimeoutSeconds: CONNECT_SECONDS,
          },
        }
        return [
          (async (): Promise<[string, AgentState]> => {
            try {
              const ask = async () => SERVICES[agent.service].running(await connections.host(spec))
              const running = await withDeadline(
                ask(),
                ASK_SECONDS * 1000,
                () => new Error(`${record.worker}: no answer within ${ASK_SECONDS}s (is its login hanging?)`),
              )
              return [record.worker, {state: running ? 'running' : 'stopped'}]
            } catch (error) {
              return [record.worker, {state: 'unreachable', error: messageOf(error).split('\n')[0]}]
            }
          })(),
        ]
      }),
    )
    return new Map(asked)
  } finally {
    await connections.closeAll()
  }
}
