/**
 * A small command for tests that need a real process (signals, a terminal, stderr, the log file): it
 * runs a plan the way hybrid's commands do. Not a test file; run as
 * `node dist/test/unit/plan-child.js SCENARIO`.
 *   interrupt  4 hosts × 3 steps of STEP_MS, concurrency 2, JSON events on stdout, SIGINT handling
 *   redaction  a plan whose phase and host step fail with the token (read from TOKEN_FILE) in their errors
 *   tty        2 hosts with uploads and log lines, progress rows when stderr is a terminal
 *   log        the logger alone: `log FORMAT LEVEL file|nofile` writes a debug, an info (host w9), a warn line
 */
import {readFileSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'

import {HybridError} from '../../src/errors.js'
import {createLogger, type LogFormat} from '../../src/log/logger.js'
import {registerSecret} from '../../src/log/redact.js'
import {writeStderr} from '../../src/log/terminal.js'
import {
  createPlanContext,
  forEachHost,
  handleInterrupts,
  type Phase,
  type PlanContext,
  runPlan,
  summaryJson,
} from '../../src/plan/index.js'
import {createProgress, progressMode, renderSummary} from '../../src/ui/index.js'

const scenario = process.argv[2]
const stepMs = Number(process.env.STEP_MS ?? 300)

async function interrupt(): Promise<number> {
  const logger = createLogger({format: 'json', command: 'child', file: false})
  const interrupts = handleInterrupts({logger})
  const progress = createProgress({mode: 'json', logger})
  const ctx = createPlanContext({logger, signal: interrupts.signal, progress, concurrency: 2})
  const hosts = ['w1', 'w2', 'w3', 'w4']
  const steps = ['one', 'two', 'three'].map((title) => ({title, run: () => sleep(stepMs)}))
  const phases: Phase[] = [
    {title: 'first', run: () => {}, cleanUp: () => progress.report({event: 'result', result: 'cleaned first'})},
    {
      title: 'join',
      run: async (c) => void (await forEachHost(c, hosts, {name: (h) => h, steps})),
      cleanUp: () => progress.report({event: 'result', result: 'cleaned join'}),
    },
    {title: 'last', run: () => {}, cleanUp: () => progress.report({event: 'result', result: 'cleaned last'})},
  ]
  const result = await runPlan(phases, ctx)
  progress.report({event: 'result', result: summaryJson(result)})
  interrupts.dispose()
  return result.exitCode
}

async function redaction(format: LogFormat): Promise<number> {
  const token = readFileSync(process.env.TOKEN_FILE ?? '', 'utf8').trim()
  registerSecret(token)
  const logger = createLogger({format, level: process.env.LOG_LEVEL ?? 'info', command: 'child'})
  const json = format === 'json'
  const progress = createProgress({
    mode: progressMode({json, logFormat: format, stderrIsTTY: Boolean(process.stderr.isTTY)}),
    logger,
  })
  const ctx = createPlanContext({logger, progress, concurrency: 2})
  const pem =
    '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----'
  const phases: Phase[] = [
    {
      title: 'connect',
      run: async (c: PlanContext) => {
        await forEachHost(c, ['w1', 'w2'], {
          name: (h) => h,
          steps: [
            {
              title: 'authenticate',
              run: async (h, host) => {
                if (h === 'w2') throw new Error(`ssh auth failed for ${h} with token ${token}`)
                host.logger.info(
                  {
                    token,
                    nested: {deeper: {password: 'hunter2-hunter2'}},
                    kubeconfig:
                      'apiVersion: v1\nusers:\n- user:\n    client-key-data: LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUVy\n',
                  },
                  'connected',
                )
                host.logger.warn(`server said K10${'ab'.repeat(32)}::server:0123456789abcdef is the join token`)
                host.logger.error({err: new Error(`key rejected:\n${pem}`)}, 'key problem')
                await c.wet(h, `write the token ${token} to /var/lib/rancher/k3s/token`, () => {})
              },
            },
          ],
        })
      },
    },
    {
      title: 'start control plane',
      run: () => {
        const error = new HybridError('TOKEN_UNREADABLE', `the control plane refused the token ${token}`, {
          details: [`token file held ${token}`],
        })
        logger.error({err: error}, 'control plane failed')
        throw error
      },
    },
  ]
  const result = await runPlan(phases, ctx)
  progress.close()
  if (json) progress.report({event: 'result', result: summaryJson(result)})
  else writeStderr(renderSummary(result))
  return result.exitCode
}

async function tty(): Promise<number> {
  const logger = createLogger({format: 'pretty', command: 'child', file: false})
  const mode = progressMode({json: false, logFormat: 'pretty', stderrIsTTY: Boolean(process.stderr.isTTY)})
  const progress = createProgress({mode, logger})
  const ctx = createPlanContext({logger, progress, concurrency: 2})
  logger.info(`progress mode ${mode}`)
  const phases: Phase[] = [
    {
      title: 'install agents',
      run: async (c) => {
        await forEachHost(c, ['alpha', 'beta'], {
          name: (h) => h,
          steps: [
            {
              title: 'upload k3s',
              run: async (_h, host) => {
                for (let done = 0; done <= 4; done++) {
                  host.bytes(done * 1024 * 1024, 4 * 1024 * 1024)
                  await sleep(stepMs / 4)
                }
                host.logger.info('upload checked: sha256 matches')
              },
            },
            {title: 'start agent', run: () => sleep(stepMs)},
          ],
        })
      },
    },
  ]
  const result = await runPlan(phases, ctx)
  progress.close()
  writeStderr(renderSummary(result))
  return result.exitCode
}

/** The logger alone: `log FORMAT LEVEL file|nofile [fields]` (fields: one line with list and word fields). */
async function log(): Promise<number> {
  const [format, level, file, fields] = process.argv.slice(3)
  const logger = createLogger({format: format as LogFormat, level, command: 'child', file: file === 'file'})
  if (fields) {
    logger.info({applying: ['a', 'b'], found: ['a', 'b', 'c'], setting: 'auto'}, 'applying (auto): a, b')
    return 0
  }
  logger.debug('a debug line')
  logger.child({host: 'w9'}).info('hello from w9')
  logger.warn('careful now')
  return 0
}

const run = {interrupt, redaction: () => redaction((process.argv[3] ?? 'json') as LogFormat), tty, log}[scenario ?? '']
if (!run) {
  process.stderr.write(`unknown scenario ${scenario}\n`)
  process.exit(2)
}
process.exitCode = await run()
