import {randomBytes} from 'node:crypto'
import {access, mkdir, readFile, rmdir} from 'node:fs/promises'
import {basename, join} from 'node:path'

import {readMountinfo} from './mountinfo.js'

/**
 * Can the kubelet build its QoS cgroup tree here? The cgroup version, then what the kubelet does: a
 * child cgroup created below this process's own, populated by the kernel with its control files, and
 * removed again. Under v1 that is tried in each controller the kubelet needs (cpu, memory, pids).
 * gVisor without cgroups mounts nothing at /sys/fs/cgroup, and its cgroupfs does not populate the
 * directories it lets one create.
 */
export interface CgroupFacts {
  readonly version: 1 | 2 | 'none'
  /** Every child cgroup was created, had its control files, and was removed. */
  readonly childWorks?: boolean
  /** The child cgroups the probe made (all removed again). */
  readonly created: readonly string[]
  readonly evidence: string
}

const ROOT = '/sys/fs/cgroup'
/** Per controller, a file the kernel puts in every new cgroup of it. */
const V1_CONTROLLERS: Readonly<Record<string, string>> = {
  cpu: 'cpu.shares',
  memory: 'memory.limit_in_bytes',
  pids: 'pids.max',
}
const V2_CONTROLLERS = ['cpu', 'memory', 'pids']

export async function probeCgroups(): Promise<CgroupFacts> {
  const mounts = await readMountinfo()
  const own = parseProcCgroup(await readFile('/proc/self/cgroup', 'utf8').catch(() => ''))
  const name = `hybrid-probe-${process.pid}-${randomBytes(3).toString('hex')}`
  if (mounts.some((m) => m.mountPoint === ROOT && m.fsType === 'cgroup2')) {
    const dir = join(ROOT, own.get('') ?? '/', name)
    const available = (await readFile(join(ROOT, 'cgroup.controllers'), 'utf8').catch(() => '')).split(/\s+/)
    const lacking = V2_CONTROLLERS.filter((c) => !available.includes(c))
    const child = await tryChild(dir, 'cgroup.procs')
    const works = child.ok && lacking.length === 0
    const parts = [`cgroup v2: ${child.text}`]
    if (lacking.length > 0)
      parts.push(`the root cgroup lacks the ${lacking.join(', ')} controller${lacking.length > 1 ? 's' : ''}`)
    return {version: 2, childWorks: works, created: child.made ? [dir] : [], evidence: parts.join('; ')}
  }
  const v1 = mounts.filter((m) => m.fsType === 'cgroup' && m.mountPoint.startsWith(`${ROOT}/`))
  if (v1.length === 0) return {version: 'none', created: [], evidence: `no cgroup hierarchy is mounted at ${ROOT}`}
  const created: string[] = []
  const parts: string[] = []
  let works = true
  for (const [controller, file] of Object.entries(V1_CONTROLLERS)) {
    const mount = v1.find((m) => basename(m.mountPoint).split(',').includes(controller))
    if (!mount) {
      works = false
      parts.push(`${controller}: not mounted`)
      continue
    }
    const dir = join(mount.mountPoint, own.get(controller) ?? '/', name)
    const child = await tryChild(dir, file)
    if (child.made) created.push(dir)
    works &&= child.ok
    parts.push(`${controller}: ${child.text}`)
  }
  return {version: 1, childWorks: works, created, evidence: `cgroup v1: ${parts.join('; ')}`}
}

/** "controller list" → path; cgroup v2's line has an empty list. */
function parseProcCgroup(text: string): Map<string, string> {
  const paths = new Map<string, string>()
  for (const line of text.split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line)
    if (!match) continue
    for (const controller of match[1].split(',')) paths.set(controller.replace(/^name=/, ''), match[2])
  }
  return paths
}

async function tryChild(dir: string, controlFile: string): Promise<{ok: boolean; made: boolean; text: string}> {
  try {
    await mkdir(dir)
  } catch (error) {
    return {ok: false, made: false, text: `cannot create a child cgroup (${(error as NodeJS.ErrnoException).code})`}
  }
  let populated = true
  try {
    await access(join(dir, controlFile))
  } catch {
    populated = false
  }
  try {
    await rmdir(dir)
  } catch (error) {
    return {
      ok: false,
      made: true,
      text: `a child cgroup was created but cannot be removed (${(error as NodeJS.ErrnoException).code}): ${dir}`,
    }
  }
  return populated
    ? {ok: true, made: true, text: 'a child cgroup was created and removed'}
    : {
        ok: false,
        made: true,
        text: `a child cgroup was created without its ${controlFile} (not populated), and removed`,
      }
}
