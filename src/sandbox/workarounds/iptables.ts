import {mkdir, rm} from 'node:fs/promises'
import {delimiter, join} from 'node:path'

import {findProgram, SYSTEM_PATH} from '../probes/find-program.js'
import {probeIptables} from '../probes/iptables.js'
import {shellQuote} from '../probes/run-tool.js'
import {writeFileAtomic} from '../../util/fs-atomic.js'
import {probeSignal, recordedPath} from './config-only.js'
import type {ServerConfigFragment, Workaround} from './workaround.js'

const PATH_DIR = 'iptables-legacy-path'
/** The programs k3s and its components call, each with its legacy-backend name. */
const PROGRAMS: ReadonlyArray<readonly [string, string]> = [
  ['iptables', 'iptables-legacy'],
  ['iptables-save', 'iptables-legacy-save'],
  ['iptables-restore', 'iptables-legacy-restore'],
  ['ip6tables', 'ip6tables-legacy'],
  ['ip6tables-save', 'ip6tables-legacy-save'],
  ['ip6tables-restore', 'ip6tables-legacy-restore'],
]

/**
 * nf_tables is missing in gVisor ("Failed to initialize nft: Protocol not supported"). k3s then has to
 * use the legacy backend: a directory of `iptables` → `iptables-legacy` (and -save, -restore, ip6tables)
 * put first on k3s's PATH when the machine has the legacy programs; else k3s's own bundled ones
 * (`prefer-bundled-bin`). The directory holds two-line sh wrappers rather than symlinks, because the
 * sandboxes this is for may not follow symlinks (see cnibin).
 */
export const iptables: Workaround = {
  id: 'iptables',
  blocker: 'nf_tables is unavailable (Failed to initialize nft: Protocol not supported)',
  remedy: 'k3s uses the legacy iptables backend (a PATH with iptables-legacy first, or its bundled binaries)',
  failurePattern: /Failed to initialize nft|nf_tables/,
  appliesTo: () => true,
  async probe(ctx) {
    const facts = await probeIptables(probeSignal(ctx))
    const evidence = `${facts.nft.evidence}; ${facts.legacy.evidence}`
    const found = facts.nft.tried && facts.nft.works === false
    if (found && facts.legacy.tried && facts.legacy.works === false) {
      return {
        found,
        evidence,
        unremediable:
          'the legacy iptables backend fails too, so k3s has no working iptables here (gVisor has iptables only on its own network stack with runsc --net-raw, not with --network=host)',
        details: {...facts},
      }
    }
    return {found, evidence, details: {...facts}}
  },
  async apply(ctx) {
    const programs = hostLegacyPrograms()
    if (programs.length === 0) return {id: 'iptables', details: {bundled: true}}
    const dir = join(ctx.workDir, PATH_DIR)
    await mkdir(dir, {recursive: true, mode: 0o755})
    for (const [name, target] of programs)
      await writeFileAtomic(join(dir, name), `#!/bin/sh\nexec ${shellQuote(target)} "$@"\n`, 0o755)
    return {id: 'iptables', details: {dir, programs: Object.fromEntries(programs)}}
  },
  async undo(record) {
    const dir = recordedPath(record, 'dir', `/${PATH_DIR}`)
    if (dir) await rm(dir, {recursive: true, force: true})
  },
  serverConfig(): ServerConfigFragment {
    return hostLegacyPrograms().length === 0 ? {'prefer-bundled-bin': true} : {}
  },
  environment(_ctx, record): Record<string, string> {
    const dir = recordedPath(record, 'dir', `/${PATH_DIR}`)
    return dir ? {PATH: `${dir}${delimiter}${process.env.PATH ?? SYSTEM_PATH}`} : {}
  },
}

/** [name, absolute legacy program] for each legacy program this machine has; none without iptables-legacy. */
export function hostLegacyPrograms(path = process.env.PATH ?? SYSTEM_PATH): Array<[string, string]> {
  const found = PROGRAMS.flatMap(([name, legacy]): Array<[string, string]> => {
    const target = findProgram(legacy, path)
    return target ? [[name, target]] : []
  })
  return found.some(([name]) => name === 'iptables') ? found : []
}
