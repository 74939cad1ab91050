import {Flags} from '@oclif/core'
import {rmSync} from 'node:fs'
import {rm} from 'node:fs/promises'
import {constants} from 'node:os'

import {HybridCommand} from '../cli/hybrid-command.js'
import {UsageError} from '../errors.js'
import {
  type ExitStatus,
  type InterceptCounters,
  type Rule,
  type RuleMode,
  spawnIntercepted,
  writePrivateProcSysTree,
} from '../interceptor/index.js'

const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

function parseRule(text: string, mode: RuleMode): Rule {
  const at = text.indexOf('=')
  if (at <= 0 || at === text.length - 1) throw new UsageError(`The rule ${JSON.stringify(text)} is not SRC=DST.`)
  return {from: text.slice(0, at), to: text.slice(at + 1), mode}
}

/** The shell's convention: a command killed by signal N ends with 128 + N. */
function shellExitCode(status: ExitStatus): number {
  if (status.code !== null) return status.code
  return 128 + (status.signal ? constants.signals[status.signal] : 0)
}

function statsText(c: InterceptCounters): string {
  const list = (r: Record<string, number>) =>
    Object.entries(r)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 'none'
  return [
    `interceptor: ${c.stops} stops, ${c.signals} signals passed, ${c.tracees} tracees alive`,
    `  syscalls seen: ${list(c.syscalls)}`,
    `  rewrites: ${list(c.rewrites)}`,
    ...(Object.keys(c.missed).length > 0
      ? [
          `  matched but not redirected (descriptor closed by the process, a relative path's remainder outside it, or a path that could not be read): ${list(c.missed)}`,
        ]
      : []),
  ].join('\n')
}

export default class Intercept extends HybridCommand {
  static override summary = 'Run a command with paths redirected by the ptrace interceptor.'
  static override description = `Runs CMD and all its descendants under ptrace; a seccomp filter stops them only on syscalls that take a path. Each --rule SRC=DST redirects SRC (a directory: everything below it; a file: that file, and DST must have the same name) to DST. Relative paths count as the directory they are resolved in joined with them; paths with a ".." component are never redirected.

Without --rule, hybrid writes the kubelet's six /proc/sys tunables (vm/overcommit_memory=1, vm/panic_on_oom=0, kernel/panic=10, kernel/panic_on_oops=1, kernel/keys/root_maxkeys=1000000, kernel/keys/root_maxbytes=25000000) into a private temporary tree, removed at exit (or by the next run, when hybrid was killed), and always redirects reads and writes of them there.

CMD's stdin, stdout and stderr are its own; hybrid exits with CMD's exit code, or 128+N when CMD is killed by signal N, once CMD and the processes it started have ended. SIGINT, SIGTERM and SIGHUP sent to hybrid while CMD runs are passed on to CMD.`

  static override strict = false
  static override usage = 'intercept [--rule SRC=DST]... [--mode missing|always] [--stats] [--json] -- CMD [ARGS...]'
  static override examples = [
    '<%= config.bin %> intercept -- cat /proc/sys/vm/panic_on_oom',
    '<%= config.bin %> intercept --rule /proc/sys=/srv/fake-sysctl --mode always --stats -- k3s server',
  ]

  static override flags = {
    rule: Flags.string({
      description: 'redirect SRC to DST (absolute paths; repeatable)',
      helpValue: 'SRC=DST',
      multiple: true,
      multipleNonGreedy: true,
    }),
    mode: Flags.option({
      description:
        'redirect only when the real path is missing, or always [default: missing for --rule, always for the built-in /proc/sys set]',
      options: ['missing', 'always'] as const,
    })(),
    stats: Flags.boolean({description: 'print the interceptor counters on stderr when CMD ends (JSON with --json)'}),
  }

  // stdout belongs to CMD: the JSON document (stats, errors) goes to stderr.
  override logJson(json: unknown): void {
    process.stderr.write(`${JSON.stringify(json, null, 2)}\n`)
  }

  async run(): Promise<void> {
    const {flags, argv} = await this.parse(Intercept)
    // Take CMD from the raw argv: oclif's argv is re-sorted by first occurrence, which misorders a
    // command argument that equals a flag value (`--mode always -- echo always`).
    const dashdash = this.argv.indexOf('--')
    const [command, ...args] = dashdash >= 0 ? this.argv.slice(dashdash + 1) : (argv as string[])
    if (command === undefined)
      throw new UsageError('No command given: hybrid intercept [--rule SRC=DST]... -- CMD [ARGS...].')

    let tree: string | undefined
    try {
      let rules: Rule[]
      if (flags.rule && flags.rule.length > 0) {
        rules = flags.rule.map((r) => parseRule(r, flags.mode ?? 'missing'))
      } else {
        const privateTree = await writePrivateProcSysTree()
        tree = privateTree.dir
        rules = privateTree.rules.map((r) => ({...r, mode: flags.mode ?? 'always'}))
      }
      const traced = spawnIntercepted(command, args, {rules})
      const forward = (signal: NodeJS.Signals) => traced.kill(signal)
      for (const signal of FORWARDED_SIGNALS) process.on(signal, forward)
      const status = await traced.exited
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward)

      const counters = traced.counters()
      if (this.jsonEnabled()) this.logJson({exit: status, ...(flags.stats ? {counters} : {})})
      else if (flags.stats) process.stderr.write(`${statsText(counters)}\n`)
      process.exitCode = shellExitCode(status)

      // Like strace -f, stay while processes CMD left behind run: they need their tracer (and the
      // tree). A signal now ends hybrid, and them with it.
      const giveUp = () => {
        if (tree) rmSync(tree, {recursive: true, force: true})
        process.exit()
      }
      for (const signal of FORWARDED_SIGNALS) process.on(signal, giveUp)
      await traced.finished
      for (const signal of FORWARDED_SIGNALS) process.off(signal, giveUp)
    } finally {
      if (tree) await rm(tree, {recursive: true, force: true})
    }
  }
}
