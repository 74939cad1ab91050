import type {Duplex} from 'node:stream'

import type {Client} from 'ssh2'

/**
 * ssh2 hands each SSH packet to its socket with a write of its own: a forwarded read of 64 KiB is two
 * data packets, each a syscall and, with Nagle off, a TCP segment of its own, plus the window adjusts.
 * Corked from the first write of a tick until the next tick, the packets of one burst leave in one
 * writev. Nothing waits longer than the current tick, so latency is unchanged.
 */
export function coalesceWrites(sock: Duplex): void {
  const write = sock.write.bind(sock) as (...args: unknown[]) => boolean
  let corked = false
  const uncork = () => {
    corked = false
    sock.uncork()
  }
  sock.write = ((...args: unknown[]) => {
    if (!corked && !sock.destroyed) {
      corked = true
      sock.cork()
      process.nextTick(uncork)
    }
    return write(...args)
  }) as Duplex['write']
}

/** The socket ssh2 speaks over once `connect()` was called: the one it was given, else the one it made. */
export function clientSocket(client: Client): Duplex | undefined {
  return (client as unknown as {_sock?: Duplex})._sock
}
