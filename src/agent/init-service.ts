import type {Host} from '../remote/host.js'
import type {AgentSpec} from './agent-config.js'
import type {AgentService, ServiceKind} from './service.js'
import {logLines, removePaths, type WorkerFile} from './worker-files.js'

/** The commands of an init system for the agent's service (argv, run as root). */
export interface InitCommands {
  /** After the definition changed (systemctl daemon-reload); none for OpenRC, which reads its script each time. */
  readonly reload?: readonly string[]
  readonly isEnabled: readonly string[]
  readonly enable: readonly string[]
  readonly disable: readonly string[]
  readonly start: readonly string[]
  readonly restart: readonly string[]
  readonly stop: readonly string[]
  /** Exit 0 when the agent runs. */
  readonly isActive: readonly string[]
  /** Print the agent's last `lines` log lines. */
  readonly log: (lines: number) => readonly string[]
}

/**
 * An agent service run by an init system (systemd, OpenRC): the same steps, only the commands and the
 * files differ.
 */
export function initService(
  kind: ServiceKind,
  commands: InitCommands,
  files: (spec: AgentSpec) => readonly WorkerFile[],
  paths: readonly string[],
): AgentService {
  const ok = async (host: Host, argv: readonly string[]) => (await host.run(argv, {sudo: true})).exitCode === 0
  const running = (host: Host) => ok(host, commands.isActive)
  return {
    kind,
    files,
    paths,
    async install(host, {changed}) {
      if (changed && commands.reload) await host.check(commands.reload, {sudo: true})
      if (await ok(host, commands.isEnabled)) return false
      await host.check(commands.enable, {sudo: true})
      return true
    },
    async start(host, {restart}) {
      await host.check(restart ? commands.restart : commands.start, {sudo: true})
    },
    running,
    recentLog: (host, lines) => logLines(host, commands.log(lines)),
    async stop(host) {
      if (!(await running(host))) return false
      await host.check(commands.stop, {sudo: true})
      return true
    },
    async uninstall(host) {
      // A unit or script already removed by an earlier, interrupted uninstall is not an error.
      await host.run(commands.stop, {sudo: true})
      await host.run(commands.disable, {sudo: true})
      await removePaths(host, paths)
      if (commands.reload) await host.run(commands.reload, {sudo: true})
    },
  }
}
