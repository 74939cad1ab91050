import {readdir, readFile} from 'node:fs/promises'

import {type Lab, type LabHost, runCommand} from './lab.js'

/**
 * What a dry run must leave alone besides files, seen the same way before and after: addresses
 * (`ip -o addr`), links (`ip -o link`), processes (pid and command line) and sshd's pid, on a lab host
 * and on this machine.
 */
export interface SystemSnapshot {
  readonly addresses: string[]
  readonly links: string[]
  readonly processes: string[]
  readonly sshd: string
}

/**
 * An IPv6 address is `tentative` until the kernel's duplicate address detection ends, a second or two
 * after its link comes up, whoever looks: a state of the kernel's, not a change anyone made.
 */
const kernelTransient = (line: string) => line.replace(/ tentative\b/g, '')

/**
 * Inside a lab host (its network, mount and PID namespaces). The processes leave out the snapshot's
 * own: the shell `exec` runs (`$$`) and its children (the `ps` listing them); nsenter's parent stays
 * outside the host's PID namespace. They also leave out the lab init's `sleep 3600`, which it starts
 * anew every hour (scripts/lab/workers.sh), so a snapshot across that moment would differ.
 */
export async function hostSnapshot(host: LabHost): Promise<SystemSnapshot> {
  const r = await host.exec([
    'sh',
    '-c',
    'echo "sshd $(cat /run/sshd.pid 2>/dev/null)"; ip -o addr | sed "s/^/addr /"; ip -o link | sed "s/^/link /";' +
      ' ps -e -o pid=,ppid=,args= | awk -v self=$$ \'$1 != self && $2 != self && !($2 == 1 && $3 == "sleep" && $4 == "3600" && NF == 4) {print "proc " $0}\'',
  ])
  if (r.code !== 0) throw new Error(`snapshot of ${host.name} failed: ${r.stderr}`)
  return parseSnapshot(r.stdout)
}

/**
 * This machine, as far as this test can own it: other test runs share the machine and make their own
 * labs and processes meanwhile, so the links of other labs (hlabK, hlKv…, whose K is not this lab's) and
 * their addresses are left out, and the processes are those whose command line names one of `dirs` (the
 * test's temp dir: every hybrid run, supervisor and k3s of the test names its inventory, state or data
 * dir there). The machine's own sshd, if it has one, by its pid file.
 */
export async function machineSnapshot(lab: Lab, dirs: readonly string[]): Promise<SystemSnapshot> {
  const tag = lab.subnet.split('.')[2]
  const otherLab = (line: string) => {
    const name = /^\d+: ([^:@ ]+)/.exec(line)?.[1] ?? ''
    const m = /^hl(?:ab)?(\d+)/.exec(name)
    return m !== null && m[1] !== tag
  }
  const lines = async (args: string[]) =>
    (await runCommand('ip', args)).stdout
      .split('\n')
      .filter((line) => line !== '' && !otherLab(line))
      .map((line) => line.replace(/\s+/g, ' '))
  const processes: string[] = []
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ').trim()
    if (dirs.some((dir) => argv.includes(dir))) processes.push(`${pid} ${argv}`)
  }
  const sshd = (await readFile('/run/sshd.pid', 'utf8').catch(() => '(none)')).trim()
  return {
    addresses: (await lines(['-o', 'addr'])).map(kernelTransient),
    links: await lines(['-o', 'link']),
    processes,
    sshd,
  }
}

function parseSnapshot(text: string): SystemSnapshot {
  const of = (kind: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`${kind} `))
      .map((line) =>
        line
          .slice(kind.length + 1)
          .replace(/\s+/g, ' ')
          .trim(),
      )
  return {
    addresses: of('addr').map(kernelTransient),
    links: of('link'),
    processes: of('proc'),
    sshd: of('sshd')[0] ?? '',
  }
}
