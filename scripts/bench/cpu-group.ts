import {mkdir, readFile, rmdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

const CPUACCT = ['/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup/cpu,cpuacct']

/** CPU time in seconds: user + system. */
export interface CpuTime {
  user: number
  sys: number
}

export const total = (t: CpuTime): number => t.user + t.sys
export const minus = (a: CpuTime, b: CpuTime): CpuTime => ({user: a.user - b.user, sys: a.sys - b.sys})

/**
 * A cpuacct control group of the benchmark's own: every process moved into it, and everything they start
 * (detached, setsid, in other namespaces), is counted, also after it has ended. Removed by `remove()`.
 */
export class CpuGroup {
  private constructor(readonly dir: string) {}

  static async create(name: string): Promise<CpuGroup> {
    for (const root of CPUACCT) {
      const dir = join(root, `hybrid-bench-${process.pid}-${name}`)
      try {
        await mkdir(dir)
        return new CpuGroup(dir)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') return new CpuGroup(dir)
      }
    }
    throw new Error('no cgroup v1 cpuacct hierarchy to count CPU time in (/sys/fs/cgroup/cpuacct)')
  }

  /** Move a process (all its threads) into the group. */
  async add(pid: number): Promise<void> {
    await writeFile(join(this.dir, 'cgroup.procs'), `${pid}\n`)
  }

  /** A shell prefix that puts itself into the group and then execs the command given after it. */
  wrap(argv: string[]): string[] {
    return ['sh', '-c', `echo $$ > ${join(this.dir, 'cgroup.procs')} && exec "$@"`, 'sh', ...argv]
  }

  async usage(): Promise<CpuTime> {
    const ns = async (file: string) => Number(await readFile(join(this.dir, file), 'utf8')) / 1e9
    return {user: await ns('cpuacct.usage_user'), sys: await ns('cpuacct.usage_sys')}
  }

  async pids(): Promise<number[]> {
    return (await readFile(join(this.dir, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean).map(Number)
  }

  /** Move whatever is left to the parent group and remove the group. */
  async remove(): Promise<void> {
    const parent = join(this.dir, '..', 'cgroup.procs')
    for (const pid of await this.pids().catch(() => [])) await writeFile(parent, `${pid}\n`).catch(() => undefined)
    await rmdir(this.dir).catch(() => undefined)
  }
}

const TICK = 100 // USER_HZ

/** One process's CPU time (with its waited-for children) from /proc/PID/stat; zero once it is gone. */
export async function processCpu(pid: number): Promise<CpuTime> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  if (!stat) return {user: 0, sys: 0}
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields 14-17 of stat (utime, stime, cutime, cstime) are 11-14 after the state
  return {user: (Number(f[11]) + Number(f[13])) / TICK, sys: (Number(f[12]) + Number(f[14])) / TICK}
}

/** The pids in the group whose command line contains every one of `words`. */
export async function findInGroup(group: CpuGroup, words: string[]): Promise<number[]> {
  const found: number[] = []
  for (const pid of await group.pids()) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (words.every((w) => cmdline.split('\0').includes(w))) found.push(pid)
  }
  return found
}
