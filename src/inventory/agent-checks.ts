import {HYBRID_AGENT_KEYS, K3S_AGENT_FLAGS, K3S_AGENT_LIST_FLAGS} from '../agent/k3s-agent-flags.js'
import {formatPath} from './errors.js'
import {WORKER_LABEL} from './node-names.js'
import type {Finding, PathSegment} from './positions.js'

/**
 * The agent's settings, registries and images beyond what the schema says: every key of `spec.agent` and
 * `workers[].agent` is a `k3s agent` flag that hybrid does not set itself, an uploaded file lands on no
 * path hybrid writes, and each registry's password comes from exactly one of a file or a variable.
 */

type Dict = Record<string, unknown>

function dict(value: unknown): Dict | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Dict) : undefined
}

/** Paths on a worker that hybrid writes for the agent: no uploaded file may take one. */
const HYBRID_PATHS = new Set([
  '/usr/local/bin/k3s',
  '/etc/rancher/k3s/config.yaml',
  '/etc/rancher/k3s/token',
  '/etc/rancher/k3s/registries.yaml',
  '/etc/rancher/k3s/k3s-agent.env',
  '/etc/rancher/node/password',
  '/etc/systemd/system/k3s-agent.service',
  '/etc/systemd/system/k3s-agent.service.env',
  '/etc/init.d/k3s-agent',
  '/var/lib/rancher/hybrid/owner',
])
/** Directories whose content the agent or hybrid own (the images dir has spec.images.archives). */
const HYBRID_DIRS = ['/var/lib/rancher/k3s/', '/var/lib/rancher/hybrid/', '/run/k3s/']

function checkAgent(agent: Dict, at: (...rest: PathSegment[]) => PathSegment[]): Finding[] {
  const findings: Finding[] = []
  for (const [key, value] of Object.entries(agent)) {
    if (key === 'environment' || key === 'files') continue
    const why = HYBRID_AGENT_KEYS[key]
    if (why !== undefined) {
      findings.push({path: at(key), target: 'key', message: `${key} is set by hybrid: ${why}`})
    } else if (!K3S_AGENT_FLAGS.has(key)) {
      findings.push({
        path: at(key),
        target: 'key',
        message: `${key} is not a flag of k3s agent (keys are k3s agent's flag names, such as kubelet-arg, flannel-iface, node-label)`,
      })
    } else if (Array.isArray(value) && !K3S_AGENT_LIST_FLAGS.has(key)) {
      findings.push({path: at(key), target: 'value', message: `${key} takes one value, not a list`})
    }
    if (key === 'node-label') {
      const labels = Array.isArray(value) ? value : [value]
      labels.forEach((label, i) => {
        if (typeof label === 'string' && label.split('=')[0] === WORKER_LABEL)
          findings.push({
            path: Array.isArray(value) ? at(key, i) : at(key),
            target: 'value',
            message: `${WORKER_LABEL} is hybrid's own label, which tells this cluster's Nodes from others of the same name`,
          })
      })
    }
  }
  if (Array.isArray(agent.files)) {
    const seen = new Map<string, number>()
    agent.files.forEach((file, i) => {
      const destination = dict(file)?.destination
      if (typeof destination !== 'string') return
      const first = seen.get(destination)
      if (first !== undefined)
        findings.push({
          path: at('files', i, 'destination'),
          target: 'value',
          message: `${destination} is already the destination of ${formatPath(at('files', first))}`,
        })
      seen.set(destination, i)
      if (HYBRID_PATHS.has(destination) || HYBRID_DIRS.some((dir) => destination.startsWith(dir)))
        findings.push({
          path: at('files', i, 'destination'),
          target: 'value',
          message: `${destination} is written by hybrid or k3s; upload files elsewhere (image archives go in spec.images.archives)`,
        })
    })
  }
  return findings
}

function checkRegistries(registries: Dict): Finding[] {
  const findings: Finding[] = []
  for (const [registry, config] of Object.entries(dict(registries.configs) ?? {})) {
    const auth = dict(dict(config)?.auth)
    if (!auth) continue
    const count = (auth.passwordFile !== undefined ? 1 : 0) + (auth.passwordEnv !== undefined ? 1 : 0)
    if (count !== 1)
      findings.push({
        path: ['spec', 'registries', 'configs', registry, 'auth'],
        target: 'key',
        message:
          'needs exactly one of passwordFile (a local file holding the password) or passwordEnv (an environment variable that holds it)',
      })
  }
  return findings
}

/** Every problem of spec.agent, workers[].agent and spec.registries. */
export function checkAgentSettings(spec: Dict): Finding[] {
  const findings: Finding[] = []
  const agent = dict(spec.agent)
  if (agent) findings.push(...checkAgent(agent, (...rest) => ['spec', 'agent', ...rest]))
  if (Array.isArray(spec.workers))
    spec.workers.forEach((worker, index) => {
      const own = dict(dict(worker)?.agent)
      if (own) findings.push(...checkAgent(own, (...rest) => ['spec', 'workers', index, 'agent', ...rest]))
    })
  const registries = dict(spec.registries)
  if (registries) findings.push(...checkRegistries(registries))
  return findings
}
