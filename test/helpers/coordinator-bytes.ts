import {strict as assert} from 'node:assert'
import {createHash, randomBytes} from 'node:crypto'
import {chmod, open, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {STANDIN} from '../system/cluster-fixture.js'
import type {Lab, LabHost} from './lab.js'

/**
 * What the coordinator sends a lab host over SSH, counted by an iptables rule in the host's own network
 * namespace (gone with the host): packets from the machine's address on the lab's bridge to sshd's port.
 * Used by the distribute test and scripts/bench/distribute.ts.
 */

/** The machine's address on the lab's bridge (.1 of its subnet): where the coordinator's SSH comes from. */
export function labGateway(lab: Lab): string {
  return lab.subnet.replace(/\.0\/24$/, '.1')
}

/** Count what the coordinator sends to the host's sshd, from zero. */
export async function countFromCoordinator(host: LabHost, gateway: string): Promise<void> {
  const rule = ['INPUT', '-s', gateway, '-p', 'tcp', '--dport', '22']
  if ((await host.exec(['iptables', '-w', '-C', ...rule])).code !== 0)
    assert.equal((await host.exec(['iptables', '-w', '-I', ...rule])).code, 0)
  assert.equal((await host.exec(['iptables', '-w', '-Z', 'INPUT'])).code, 0)
}

export async function bytesFromCoordinator(host: LabHost): Promise<number> {
  const listed = await host.exec(['iptables', '-w', '-nvxL', 'INPUT'])
  const line = listed.stdout.split('\n').find((l) => l.includes('dpt:22'))
  assert.ok(line, `the counting rule is in ${host.name}: ${listed.stdout}`)
  return Number(line.trim().split(/\s+/)[1])
}

/**
 * A k3s "binary" of `mib` MiB: a shell line running the k3s stand-in (which every lab host sees at its path
 * on this machine), padded with random bytes after it that sh never reads. Its path and sha256.
 */
export async function paddedStandin(dir: string, mib: number): Promise<{binary: string; sha256: string}> {
  const binary = join(dir, 'k3s')
  const handle = await open(binary, 'w')
  await handle.write(`#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(STANDIN)} "$@"\nexit 1\n`)
  for (let i = 0; i < mib; i++) await handle.write(randomBytes(1 << 20))
  await handle.close()
  await chmod(binary, 0o755)
  return {
    binary,
    sha256: createHash('sha256')
      .update(await readFile(binary))
      .digest('hex'),
  }
}
