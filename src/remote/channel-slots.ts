/**
 * The channels one SSH connection may have open at once (below sshd's MaxSessions): a command waits for a
 * slot, and one that sshd refused while others were open waits for any of them to end before it tries again.
 */
export class ChannelSlots {
  private open = 0
  private readonly waiting: Array<() => void> = []
  /** Retries waiting for any channel to end. */
  private readonly released: Array<() => void> = []

  constructor(private readonly max: number) {}

  /** Channels open now. */
  get inUse(): number {
    return this.open
  }

  acquire(): Promise<void> {
    if (this.open < this.max) {
      this.open++
      return Promise.resolve()
    }
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  release(): void {
    const next = this.waiting.shift()
    if (next) next()
    else this.open--
    for (const wake of this.released.splice(0)) wake()
  }

  /** Settles at the next release of any slot. */
  nextRelease(): Promise<void> {
    return new Promise((resolve) => this.released.push(resolve))
  }
}
