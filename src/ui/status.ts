import type {StatusResult} from '../actions/status.js'
import {formatBytes, formatDuration} from './format.js'
import {renderTable} from './table.js'
import {renderWorkerRows} from './workers.js'

/** The human view: a few aligned lines, then the nodes table. */
export function renderStatus(s: StatusResult): string {
  if (!s.phase) return `cluster ${s.cluster} is not up`
  const lines: string[] = []
  lines.push(headline(s))
  if (s.supervisor)
    lines.push(
      `supervisor  pid ${s.supervisor.pid}, ${s.elsewhere ? 'in that namespace' : s.supervisor.alive ? 'running' : 'gone'}${s.supervisor.detached ? ', detached' : ', foreground'}`,
    )
  if (s.k3s && s.elsewhere)
    lines.push(
      `k3s server  pid ${s.k3s.pid} in that namespace, ${s.k3s.restarts} restart${s.k3s.restarts === 1 ? '' : 's'}`,
    )
  else if (s.k3s)
    lines.push(
      `k3s server  pid ${s.k3s.pid}, ${s.k3s.alive ? `up ${formatDuration((s.k3s.uptimeSeconds ?? 0) * 1000)}` : 'not running'}, ${s.k3s.restarts} restart${s.k3s.restarts === 1 ? '' : 's'}`,
    )
  lines.push(`workarounds ${s.workarounds.length > 0 ? s.workarounds.join(', ') : 'none'}`)
  if (s.interceptor) {
    const rewrites = (s.interceptor.rewrites ?? {}) as Record<string, number>
    const byPath = Object.entries(rewrites).map(([path, n]) => `${path} ×${n}`)
    lines.push(
      `interceptor ${Number(s.interceptor.stops ?? 0)} stops, ${Number(s.interceptor.tracees ?? 0)} tracees; rewrites: ${byPath.length > 0 ? byPath.join(', ') : 'none yet'}`,
    )
  }
  if (s.api) lines.push(`API         ${s.api.server} ${s.api.ready ? 'ready' : 'not ready'}`)
  if (s.kubeconfig)
    lines.push(
      s.elsewhere
        ? `kubeconfig  \`hybrid kubeconfig\` prints it for here (${s.kubeconfig} is for the sandbox)`
        : `kubeconfig  ${s.kubeconfig}`,
    )
  if (s.lastSnapshot) {
    const l = s.lastSnapshot
    const failed = l.failed.length > 0 ? `; failed on ${l.failed.join(', ')}` : ''
    lines.push(`snapshot    ${l.id}, taken ${l.takenAt}, ${formatBytes(l.bytes)}, on ${l.stored.join(', ')}${failed}`)
  }
  let out = lines.join('\n')
  if (s.nodes.length > 0)
    out += `\n\n${renderTable(
      ['NODE', 'READY', 'VERSION', 'TAINTS'],
      s.nodes.map((n) => [
        n.name,
        n.ready ? 'Ready' : `NotReady (${n.reason})`,
        n.version || '-',
        n.taints.join(', ') || '-',
      ]),
    )}`.trimEnd()
  if (s.sandboxNode)
    out += `\n\nsandbox Node ${s.sandboxNode.name}: its CNI config is loopback only, so pods there run with host network only`
  if (s.workers.length > 0) out += `\n\n${renderWorkerRows(s.workers, s.api?.ready === true)}`.trimEnd()
  for (const file of s.movedAside ?? [])
    out += `\nwarning: a worker record was unusable and moved aside to ${file}; that worker is no longer tracked (look at it, clean the worker up by hand, then remove the file)`
  return out
}

/**
 * The first line. A cluster in another pid namespace (a sandbox seen from its host) is judged by its
 * API: its pids mean nothing here, and a `down` here would act on this machine, not on the sandbox.
 */
function headline(s: StatusResult): string {
  if (s.elsewhere)
    return s.up
      ? `cluster ${s.cluster} is up (${s.phase}) in another pid namespace (its sandbox); its API answers`
      : `cluster ${s.cluster} runs in another pid namespace (its sandbox), and its API does not answer from here; hybrid status there tells more`
  if (s.up) return `cluster ${s.cluster} is up (${s.phase})`
  if (s.phase === 'stopped') return `cluster ${s.cluster} stopped: ${s.failure ?? 'unknown reason'}`
  return `cluster ${s.cluster} is not running (its supervisor is gone; \`hybrid down\` cleans up)`
}
