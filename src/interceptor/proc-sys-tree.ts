import {lstat, mkdtemp, readdir, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {isAlive, pidNamespaceId} from '../util/processes.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import type {Rule} from './types.js'

/**
 * The six /proc/sys tunables the kubelet reads and writes at startup, with the values it expects.
 * gVisor lacks most of them and refuses writes to vm/overcommit_memory; the kubelet fails on either,
 * so the control plane always redirects all six into a tree hybrid writes.
 */
export const KUBELET_TUNABLES: ReadonlyArray<{path: string; value: string}> = Object.freeze([
  {path: '/proc/sys/vm/overcommit_memory', value: '1'},
  {path: '/proc/sys/vm/panic_on_oom', value: '0'},
  {path: '/proc/sys/kernel/panic', value: '10'},
  {path: '/proc/sys/kernel/panic_on_oops', value: '1'},
  {path: '/proc/sys/kernel/keys/root_maxkeys', value: '1000000'},
  {path: '/proc/sys/kernel/keys/root_maxbytes', value: '25000000'},
])

/**
 * Write the fake tree under `dir` (dir/vm/overcommit_memory, …, one value and a newline each, as the
 * kernel prints them; writable, since the kubelet writes them) and return the six `always` rules
 * that redirect the real paths into it.
 */
export async function writeProcSysTree(dir: string): Promise<Rule[]> {
  const rules: Rule[] = []
  for (const {path, value} of KUBELET_TUNABLES) {
    const target = join(dir, path.slice('/proc/sys/'.length))
    await writeFileAtomic(target, `${value}\n`, 0o644)
    rules.push({from: path, to: target, mode: 'always'})
  }
  return rules
}

const PRIVATE_TREE_PREFIX = 'hybrid-procsys-'

/**
 * A private tree for one `hybrid intercept` run, in the temporary directory and named for its owner:
 * pid namespace and pid. A SIGKILLed owner cannot remove its tree, so each new one first removes the
 * trees of owners (of this user, in this pid namespace: a sandbox may share /tmp with its host) that
 * are gone.
 */
export async function writePrivateProcSysTree(): Promise<{dir: string; rules: Rule[]}> {
  const owner = `${PRIVATE_TREE_PREFIX}${(await pidNamespaceId()) || '0'}-`
  await removeOrphanedTrees(owner)
  const dir = await mkdtemp(join(tmpdir(), `${owner}${process.pid}-`))
  return {dir, rules: await writeProcSysTree(dir)}
}

async function removeOrphanedTrees(namespacePrefix: string): Promise<void> {
  const uid = process.getuid?.()
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    const pid = name.startsWith(namespacePrefix) ? /^(\d+)-/.exec(name.slice(namespacePrefix.length))?.[1] : undefined
    if (pid === undefined || (await isAlive(Number(pid)))) continue
    const dir = join(tmpdir(), name)
    const info = await lstat(dir).catch(() => undefined)
    if (info?.isDirectory() && info.uid === uid) await rm(dir, {recursive: true, force: true}).catch(() => {})
  }
}
