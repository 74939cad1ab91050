import {setTimeout as sleep} from 'node:timers/promises'

import {HybridError} from '../errors.js'
import type {Host} from '../remote/host.js'
import {quoteArg} from '../remote/quote.js'
import {type AgentSpec, agentEnvFile} from './agent-config.js'
import type {AgentService} from './service.js'
import {logLines, removePaths} from './worker-files.js'
import {WORKER_PATHS} from './worker-paths.js'

/**
 * `service: none`, for hosts without an init system hybrid can use: a small POSIX sh supervisor, started
 * in a session of its own (setsid), runs `k3s agent`, starts it again with backoff when it dies, writes
 * its own pid to the pidfile, and on SIGTERM stops k3s and exits. It is not started at boot (there is
 * nothing to start it); `hybrid up` starts it again.
 */

/** How long `start` waits for the supervisor to write its pidfile. */
const START_WAIT_MS = 10_000

const Q = quoteArg

export function supervisorScript(): string {
  return `#!/bin/sh
# k3s agent supervisor, written by hybrid (service: none). Runs k3s agent, starts it again with backoff
# (1 s doubling to 60 s, back to 1 s after a run of 60 s) when it dies, and on SIGTERM, SIGINT or SIGHUP
# stops it and exits. Its own pid is in ${WORKER_PATHS.pidFile}.
set -u
pidfile=${Q(WORKER_PATHS.pidFile)}
child=
sleeper=
finish() {
  trap '' TERM INT HUP
  [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null
    wait "$child"
  fi
  [ "$(cat "$pidfile" 2>/dev/null)" != "$$" ] || rm -f "$pidfile"
  echo "hybrid supervisor: stopped"
  exit 0
}
trap finish TERM INT HUP
echo "$$" >"$pidfile.$$" && mv -f "$pidfile.$$" "$pidfile"
if [ -f ${Q(WORKER_PATHS.agentEnv)} ]; then
  set -a
  . ${Q(WORKER_PATHS.agentEnv)}
  set +a
fi
delay=1
while :; do
  started=$(date +%s)
  ${Q(WORKER_PATHS.binary)} agent </dev/null &
  child=$!
  wait "$child"
  status=$?
  child=
  if [ $(($(date +%s) - started)) -ge 60 ]; then delay=1; fi
  echo "hybrid supervisor: k3s agent exited with status $status; starting it again in $delay s"
  sleep "$delay" &
  sleeper=$!
  wait "$sleeper"
  sleeper=
  delay=$((delay * 2))
  if [ "$delay" -gt 60 ]; then delay=60; fi
done
`
}

/** Exit 0 when the pidfile's pid is the supervisor (its argv holds the script's path; not a reused pid). */
const IS_RUNNING = `pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] || exit 1
tr '\\0' '\\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$2"`

/**
 * SIGTERM to the supervisor (which stops k3s), up to $3 s for it to end, then SIGKILL to whatever is left
 * of its process group (its pid is the group's id: setsid); the pidfile removed. Prints "stopped" when
 * it was running.
 */
const STOP = `pid=$(cat "$1" 2>/dev/null) || pid=
script=$2
ours() { tr '\\0' '\\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$script"; }
if [ -n "$pid" ] && ours; then
  kill -TERM "$pid"
  i=0
  while ours && [ "$i" -lt $(($3 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  kill -s KILL -- "-$pid" 2>/dev/null
  echo stopped
fi
rm -f -- "$1"`

/**
 * In a session of its own, its output appended to the log, nothing tied to the SSH channel. Started in
 * the background rather than with `setsid -f`, which BusyBox's setsid lacks: a background job is no
 * group leader, so setsid makes the new session in place.
 */
const START = `mkdir -p -- "$(dirname -- "$2")"
setsid "$1" </dev/null >>"$2" 2>&1 &`

const PATHS = [WORKER_PATHS.supervisor, WORKER_PATHS.agentEnv, WORKER_PATHS.supervisorLog, WORKER_PATHS.pidFile]

async function running(host: Host): Promise<boolean> {
  const result = await host.run(['sh', '-c', IS_RUNNING, 'sh', WORKER_PATHS.pidFile, WORKER_PATHS.supervisor], {
    sudo: true,
  })
  return result.exitCode === 0
}

async function stop(host: Host, graceSeconds: number): Promise<boolean> {
  const argv = ['sh', '-c', STOP, 'sh', WORKER_PATHS.pidFile, WORKER_PATHS.supervisor, String(graceSeconds)]
  const result = await host.check(argv, {sudo: true})
  return result.stdout.includes('stopped')
}

export interface SupervisorOptions {
  /** Seconds the supervisor (and k3s below it) gets to end after SIGTERM before its whole group is killed. */
  readonly stopGraceSeconds: number
}

/** The `none` service with its stop grace. */
export function supervisorService({stopGraceSeconds}: SupervisorOptions): AgentService {
  const stopIt = (host: Host) => stop(host, stopGraceSeconds)
  return {
    kind: 'none',
    files: (spec: AgentSpec) => [
      {path: WORKER_PATHS.supervisor, content: supervisorScript(), mode: 0o755},
      {path: WORKER_PATHS.agentEnv, content: agentEnvFile(spec.environment), mode: 0o600},
    ],
    paths: PATHS,
    async install() {
      return false // nothing to register: there is no init system
    },
    async start(host, {restart}) {
      if (await running(host)) {
        if (!restart) return
        await stopIt(host)
      }
      await host.check(['sh', '-c', START, 'sh', WORKER_PATHS.supervisor, WORKER_PATHS.supervisorLog], {sudo: true})
      const deadline = Date.now() + START_WAIT_MS
      while (!(await running(host))) {
        if (Date.now() > deadline)
          throw new HybridError(
            'AGENT_START_FAILED',
            `${host.name}: the k3s agent supervisor ${WORKER_PATHS.supervisor} did not start (no pid in ${WORKER_PATHS.pidFile}); see ${WORKER_PATHS.supervisorLog}`,
          )
        await sleep(100)
      }
    },
    running,
    recentLog: (host, lines) => logLines(host, ['tail', '-n', String(lines), WORKER_PATHS.supervisorLog]),
    stop: stopIt,
    async uninstall(host) {
      await stopIt(host)
      await removePaths(host, PATHS)
    },
  }
}

/** A k3s agent ends within a second or two of SIGTERM; one still there after 15 s is hung and killed. */
export const noneService = supervisorService({stopGraceSeconds: 15})
