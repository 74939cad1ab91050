import {type ChildProcess, spawn} from 'node:child_process'
import {once} from 'node:events'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

/**
 * Every program started, with its whole argv, recorded by strace (`-f -e trace=execve,execveat`, strings
 * never cut short): deterministic, unlike polling /proc, which misses a process that lives a few
 * milliseconds. strace follows every process the traced ones start from then on, also those that
 * detach (a supervisor, an agent); stop() detaches from all of them (`-I 1`: a SIGTERM makes strace
 * detach and exit; they run on) and returns the execve lines.
 */
export interface ExecRecorder {
  stop(): Promise<string[]>
}

const STRACE = ['-I', '1', '-f', '-q', '-s', '1048576', '-e', 'trace=execve,execveat']

function recorder(child: ChildProcess, file: string): ExecRecorder {
  const exited = once(child, 'close')
  let stopped: Promise<string[]> | undefined
  return {
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
        await exited
        const text = await readFile(file, 'utf8').catch(() => '')
        return text.split('\n').filter((line) => /^\d+ +execve(at)?\(/.test(line))
      })()
      return stopped
    },
  }
}

/** Record what `pids` and their descendants from now on execute; resolves once strace traces every one of them. */
export async function recordExecsOf(pids: readonly number[], file: string): Promise<ExecRecorder> {
  const child = spawn('strace', [...STRACE, '-o', file, ...pids.flatMap((pid) => ['-p', String(pid)])], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const rec = recorder(child, file)
  const deadline = Date.now() + 20_000
  for (;;) {
    const tracers = await Promise.all(
      pids.map(async (pid) => /TracerPid:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]),
    )
    if (tracers.every((tracer) => tracer === String(child.pid))) return rec
    if (child.exitCode !== null || Date.now() > deadline) {
      await rec.stop()
      throw new Error(`strace could not attach to ${pids.join(', ')}: ${stderr.trim()}`)
    }
    await sleep(50)
  }
}

export interface RecordedRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** Recording what the program and everything it started, however detached, executes until stop(). */
  readonly recorder: ExecRecorder
}

/**
 * Run `file args` under strace, with its output in `dir` (so that a detached child holds no pipe of
 * ours); resolves when the program exits, while strace still follows what it left running.
 */
export async function runRecorded(
  dir: string,
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 180_000,
): Promise<RecordedRun> {
  const [trace, out, err, code] = ['execs.strace', 'stdout', 'stderr', 'code'].map((name) => join(dir, name))
  const script = '"$@" >"$OUT" 2>"$ERR"; echo $? >"$CODE"'
  const child = spawn('strace', [...STRACE, '-o', trace, '--', 'sh', '-c', script, 'sh', file, ...args], {
    env: {...env, OUT: out, ERR: err, CODE: code},
    stdio: ['ignore', 'ignore', 'ignore'],
  })
  const rec = recorder(child, trace)
  const deadline = Date.now() + timeoutMs
  let status: string | undefined
  // The shell writes the status once the program has exited (empty until then: the file exists from its open).
  while (!(status = await readFile(code, 'utf8').catch(() => ''))?.endsWith('\n')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await rec.stop()
      throw new Error(`${file} ${args.join(' ')} did not finish under strace within ${timeoutMs} ms`)
    }
    await sleep(200)
  }
  const read = (path: string) => readFile(path, 'utf8').catch(() => '')
  return {code: Number(status.trim()), stdout: await read(out), stderr: await read(err), recorder: rec}
}
