import {rm} from 'node:fs/promises'
import {join} from 'node:path'

import {type Rule, writeProcSysTree} from '../../interceptor/index.js'
import {probeGvisor} from '../probes/gvisor.js'
import {probeProcSys} from '../probes/procsys.js'
import {probePtrace} from '../probes/ptrace.js'
import {probeSignal, recordedPath} from './config-only.js'
import type {AppliedRecord, Workaround, WorkaroundContext} from './workaround.js'

const TREE = 'proc-sys'

/**
 * The kubelet's six /proc/sys tunables: a fake tree with the values it expects, and k3s runs under the
 * interceptor, which redirects all six paths into it (reads and writes), whatever the real ones hold.
 */
export const procsys: Workaround = {
  id: 'procsys',
  blocker:
    'kubelet tunables missing or unwritable under /proc/sys (vm/overcommit_memory, vm/panic_on_oom, kernel/panic, kernel/panic_on_oops, kernel/keys/root_maxkeys, kernel/keys/root_maxbytes)',
  remedy:
    "fake tree with the kubelet's values; k3s runs under the ptrace interceptor, which redirects the six paths into it",
  failurePattern: /\/proc\/sys\/|invalid kernel flag/,
  appliesTo: (ctx) => ctx.agent,
  async probe(ctx) {
    const gvisor = await probeGvisor()
    const facts = await probeProcSys(gvisor.gvisor)
    if (!facts.blocked) return {found: false, evidence: facts.evidence, details: {tunables: facts.tunables}}
    const ptrace = await probePtrace(probeSignal(ctx))
    const details = {tunables: facts.tunables, ptrace}
    if (ptrace.permitted === false)
      return {
        found: true,
        evidence: facts.evidence,
        unremediable: `the interceptor cannot run here: ${ptrace.evidence}`,
        details,
      }
    if (ptrace.seccompFilter === false)
      return {
        found: true,
        evidence: facts.evidence,
        unremediable: `the interceptor cannot run here: ${ptrace.evidence}`,
        details,
      }
    return {found: true, evidence: facts.evidence, details}
  },
  async apply(ctx: WorkaroundContext): Promise<AppliedRecord> {
    const dir = join(ctx.workDir, TREE)
    const rules = await writeProcSysTree(dir)
    return {id: 'procsys', details: {dir, rules}}
  },
  async undo(record) {
    const dir = recordedPath(record, 'dir', `/${TREE}`)
    if (dir) await rm(dir, {recursive: true, force: true})
  },
  serverConfig: () => ({}),
  interceptRules(_ctx, record): Rule[] {
    const rules = record.details.rules
    return Array.isArray(rules) ? (rules as Rule[]) : []
  },
}
