import type {AgentSpec} from '../../agent/agent-config.js'
import {type AgentRecord, agentRecord} from '../../agent/install.js'
import type {AgentService} from '../../agent/service.js'
import type {Host} from '../../remote/host.js'
import {changeWorkerRecord, newWorkerRecord, readWorkerRecord} from '../../state/worker-records.js'
import type {JoinTarget} from './join-target.js'

/** Print the paths that exist. */
const EXISTING = 'for p; do if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi; done'

/**
 * The paths of the agent install already on a worker that hybrid has not recorded (a first join, not
 * adopted): asked in the connect step, before hybrid's first change there. They stay out of the record,
 * so uninstall never removes them. Later runs keep the first answer, from the record.
 */
export async function preexistingPaths(
  target: JoinTarget,
  host: Host,
  service: AgentService,
  spec: AgentSpec,
): Promise<readonly string[]> {
  const {run, worker} = target
  const installed = (await readWorkerRecord(run.cluster, worker.name))?.installed
  if (installed?.agent) return installed.agent.kept ?? []
  if (worker.adopt) return []
  const record = agentRecord(service, spec)
  const found = await host.check(['sh', '-c', EXISTING, 'sh', ...record.files, ...record.directories], {sudo: true})
  // A binary an earlier, interrupted join uploaded is recorded, and hybrid's: not kept.
  const ours = installed?.binary?.path
  return found.stdout.split('\n').filter((path) => path !== '' && path !== ours)
}

/**
 * Record what the agent install will put on the worker, before the first change, so an interrupted join
 * is undone from the record: only what hybrid creates (target.kept stays out).
 */
export async function recordAgent(
  target: JoinTarget,
  service: AgentService,
  spec: AgentSpec,
  nodePassword?: string,
): Promise<void> {
  const {run, worker} = target
  const agent = withoutKept(agentRecord(service, spec), target.kept ?? [])
  await changeWorkerRecord(run.cluster, worker.name, (r) => {
    const base = r ?? newWorkerRecord(worker)
    return {
      ...base,
      spec: worker,
      ...(nodePassword ? {nodePassword} : {}),
      installed: {...base.installed, agent},
    }
  })
}

function withoutKept(record: AgentRecord, kept: readonly string[]): AgentRecord {
  if (kept.length === 0) return record
  const keep = (path: string) => !kept.includes(path)
  return {...record, files: record.files.filter(keep), directories: record.directories.filter(keep), kept}
}
