import type {Client, ClientChannel} from 'ssh2'

import {RemoteError} from './errors.js'

/**
 * A command kept running on its own channel of a worker's connection, its standard input held open:
 * the command reads its input to the end and takes that end as its signal to stop. So it ends when
 * hybrid stops it, and also when hybrid dies (the connection closes, sshd closes the command's input),
 * leaving nothing to find afterwards. For short-lived services during a run (the k3s binary served to
 * peers, docs/architecture.md "Distributing the k3s binary").
 */
export interface HeldCommand {
  /** The first line the command printed; rejects with its last stderr line when it ends first or stays silent. */
  readonly firstLine: Promise<string>
  /** Close its input (its signal to stop), wait up to `ms` for it to end, then KILL it and close the channel. */
  stop(ms?: number): Promise<void>
}

/** stdout and stderr kept at most (the first line, and the reason a command ended). */
const KEEP_BYTES = 4096

export function holdCommand(
  client: Client,
  host: string,
  line: string,
  program: string,
  stdin: string,
  firstLineSeconds: number,
): Promise<HeldCommand> {
  return new Promise((resolve, reject) => {
    client.exec(line, (error, channel) => {
      if (error) {
        reject(
          new RemoteError('REMOTE_COMMAND_FAILED', `${host}: sshd refused to run ${program}: ${error.message}`, host),
        )
        return
      }
      let out = ''
      let err = ''
      const closed = new Promise<void>((done) => channel.on('close', () => done()))
      const firstLine = new Promise<string>((found, failed) => {
        const why = (what: string) =>
          new RemoteError(
            'REMOTE_COMMAND_FAILED',
            `${host}: ${program} ${what}: ${err.trim().split('\n').pop() || 'no reason given'}`,
            host,
          )
        const timer = setTimeout(() => {
          failed(why(`printed nothing within ${firstLineSeconds}s`))
          kill(channel)
        }, firstLineSeconds * 1000)
        channel.on('data', (chunk: Buffer) => {
          if (out.length < KEEP_BYTES) out += chunk.toString()
          const end = out.indexOf('\n')
          if (end >= 0) {
            clearTimeout(timer)
            found(out.slice(0, end))
          }
        })
        channel.stderr.on('data', (chunk: Buffer) => {
          if (err.length < KEEP_BYTES) err += chunk.toString()
        })
        void closed.then(() => {
          clearTimeout(timer)
          failed(why('ended'))
        })
      })
      // A caller that never asks for the line must not leave an unhandled rejection behind.
      firstLine.catch(() => undefined)
      channel.write(stdin)
      resolve({
        firstLine,
        async stop(ms = 5000) {
          channel.end()
          let timer: NodeJS.Timeout | undefined
          const late = new Promise<boolean>((done) => (timer = setTimeout(() => done(true), ms)))
          const tooLate = await Promise.race([closed.then(() => false), late])
          clearTimeout(timer)
          if (tooLate) kill(channel)
        },
      })
    })
  })
}

/** KILL for a sshd that takes signals (OpenSSH ≥ 7.9), then close the channel either way. */
function kill(channel: ClientChannel): void {
  try {
    channel.signal('KILL')
  } catch {
    // the channel is already closing
  }
  channel.close()
}
