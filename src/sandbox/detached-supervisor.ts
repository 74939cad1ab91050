import {type ChildProcess, spawn} from 'node:child_process'
import {closeSync, openSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import type {Logger} from '../log/logger.js'
import type {ClusterPaths} from '../state/cluster-state.js'
import {tailLines} from '../util/log-tail.js'
import {waitGone} from '../util/processes.js'
import {K3sFailure, type K3sFailureData} from './k3s-failure.js'
import type {SupervisorHandle} from './supervisor-handle.js'

/**
 * `up --detach`: the same `up` re-run as `up --supervise` in a new session, its output in the cluster's
 * supervisor log, reporting readiness (or why not) over IPC; the parent returns once it is ready.
 */

/** Messages the detached supervisor sends its parent over the IPC channel. */
export type ChildMessage = {readonly type: 'ready'} | {readonly type: 'failed'; readonly failure: K3sFailureData}

const CHILD_STOP_GRACE_MS = 45_000

export interface DetachedSupervisorOptions {
  readonly inventoryFile: string
  readonly paths: ClusterPaths
  readonly logger: Logger
}

export function spawnDetachedSupervisor(options: DetachedSupervisorOptions): SupervisorHandle {
  const {paths, logger} = options
  const runJs = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
  const logFd = openSync(paths.supervisorLog, 'a', 0o600)
  let child: ChildProcess
  try {
    const argv = [runJs, 'up', '--inventory', options.inventoryFile, '--supervise', '--log-format', 'json']
    child = spawn(process.execPath, argv, {detached: true, stdio: ['ignore', logFd, logFd, 'ipc'], env: process.env})
  } finally {
    closeSync(logFd)
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') resolve()
      else if (message.type === 'failed') reject(new K3sFailure(message.failure))
    })
    child.once('exit', (code, signal) => {
      void tailLines(paths.supervisorLog, 20).then((logTail) => {
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`
        const sentence = `the detached supervisor ${how} before k3s became ready`
        reject(new K3sFailure({kind: 'died', sentence, exitCode: code, signal, logTail}))
      })
    })
  })
  ready.catch(() => {})
  return {
    pid: child.pid ?? -1,
    detached: true,
    ready,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const ended = await Promise.race([exited.then(() => true), waitGone(child.pid ?? -1, CHILD_STOP_GRACE_MS)])
      if (!ended) {
        logger.warn({pid: child.pid}, 'the detached supervisor did not stop in time; killing it')
        child.kill('SIGKILL')
        await exited
      }
    },
    release() {
      if (child.connected) child.disconnect()
      child.unref()
    },
  }
}
