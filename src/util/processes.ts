import {readFileSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {setTimeout as sleep} from 'node:timers/promises'

/**
 * Recorded pids outlive the processes they named: before signalling one, check that the pid still runs
 * the program the state says (its /proc/PID/cmdline contains every expected word), so a recycled pid is
 * never killed.
 */
export async function commandLineOf(pid: number): Promise<string[] | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8')
    return raw.split('\0').filter((part) => part !== '')
  } catch {
    return undefined
  }
}

/**
 * This process's arguments after the program, as /proc shows them to others (process.argv differs: it
 * holds the script's resolved path, /proc the one typed). Recorded so another process can recognise us.
 */
export function ownCommandLine(): string[] {
  try {
    return readFileSync('/proc/self/cmdline', 'utf8')
      .split('\0')
      .filter((part) => part !== '')
      .slice(1)
  } catch {
    return process.argv.slice(2)
  }
}

/** Is `pid` alive and running a command line that contains each of `words` (as whole arguments)? */
export async function isRecordedProcess(pid: number | undefined, words: readonly string[]): Promise<boolean> {
  if (!pid || pid <= 1) return false
  const argv = await commandLineOf(pid)
  if (!argv || argv.length === 0) return false // gone, or a zombie (empty cmdline)
  return words.every((word) => argv.includes(word))
}

/**
 * When `pid` started, in clock ticks since boot (/proc/PID/stat field 22), or undefined when it is gone:
 * with the pid, it names one process for good (a recycled pid starts later).
 */
export async function processStartTicks(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // Fields after the parenthesised command name (which may contain spaces); starttime is field 22.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
  } catch {
    return undefined
  }
}

/** Is the process alive at all (not a zombie)? */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const status = await readFile(`/proc/${pid}/stat`, 'utf8')
    // The state letter follows the parenthesised command name, which may itself contain ") ".
    const state = status.slice(status.lastIndexOf(')') + 2, status.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}

/** Wait until `pid` is gone (or a zombie), at most `timeoutMs`; true when it went. */
export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (!(await isAlive(pid))) return true
    await sleep(100)
  }
  return !(await isAlive(pid))
}

/**
 * Stop a process: SIGTERM, then SIGKILL once `graceMs` has passed. Returns how it ended. Signalling a
 * process that is already gone is not an error.
 */
export async function terminate(pid: number, graceMs: number): Promise<'gone' | 'terminated' | 'killed'> {
  if (!(await isAlive(pid))) return 'gone'
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return 'gone'
  }
  if (await waitGone(pid, graceMs)) return 'terminated'
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    return 'gone'
  }
  await waitGone(pid, 5000)
  return 'killed'
}

/** Is `pid` the k3s server started from `binary` (its command line names the binary and `server`)? */
export async function isK3sServer(pid: number | undefined, binary: string): Promise<boolean> {
  if (!pid || pid <= 1) return false
  const argv = await commandLineOf(pid)
  if (!argv || !argv.includes('server')) return false
  const name = binary.split('/').pop() ?? binary
  return argv.some((arg) => arg === binary || arg.split('/').pop() === name)
}

/** Did `promise` settle within `ms`? The timer is cleared either way, so it never holds the process. */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
  try {
    return await Promise.race([promise.then(() => true), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * This pid namespace, as "<boot time>.<its init's start time>" ('' where /proc does not say): what tells
 * a sandbox from its host. /proc/self/ns/pid would be the obvious name, but gVisor gives every process
 * its own number there.
 */
export async function pidNamespaceId(): Promise<string> {
  try {
    const boot = /^btime (\d+)$/m.exec(await readFile('/proc/stat', 'utf8'))?.[1]
    const init = await readFile('/proc/1/stat', 'utf8')
    // Field 22 (starttime), counted after the parenthesised command name, which may itself hold spaces.
    const start = init.slice(init.lastIndexOf(')') + 2).split(' ')[19]
    return boot && start ? `${boot}.${start}` : ''
  } catch {
    return ''
  }
}
