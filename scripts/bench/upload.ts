import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdtemp, open, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {SshConnections} from '../../src/remote/connections.js'
import {UPLOAD_CHUNK_SIZE, UPLOAD_CONCURRENCY} from '../../src/remote/sftp-upload.js'
import {createLab} from '../../test/helpers/lab.js'
import {labWorker} from '../../test/remote/lab-workers.js'
import {labSshOptions} from './lab-ssh-options.js'
import {median} from './median.js'

/**
 * SFTP upload throughput of hybrid (connect, upload with its sha256 checks and rename, close) against
 * OpenSSH's scp of the same file to the same lab host, rounds interleaved so a busy machine slows both
 * alike. Prints medians and the ratio of throughputs (hybrid / scp; the target is ≥ 0.8).
 * Usage: node dist/scripts/bench/upload.js [ROUNDS] [MIB]
 */
const run = promisify(execFile)
const rounds = Number(process.argv[2] ?? 5)
const mib = Number(process.argv[3] ?? 70)

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'hybrid-bench-upload-'))
  const file = join(work, 'k3s')
  // Random bytes: nothing on the way can compress them.
  const handle = await open(file, 'w')
  for (let i = 0; i < mib; i++) await handle.write(randomBytes(1 << 20))
  await handle.close()
  const lab = await createLab({hosts: [{name: 'bench'}]})
  try {
    const host = lab.host('bench')
    const worker = labWorker(lab, host)
    const times = {hybrid: [] as number[], transfer: [] as number[], scp: [] as number[]}
    for (let round = 0; round < rounds; round++) {
      await host.exec(['rm', '-f', '/usr/local/bin/k3s', '/tmp/k3s-scp'])
      let started = performance.now()
      await run('scp', ['-q', ...labSshOptions(lab), file, `root@${host.address}:/tmp/k3s-scp`])
      times.scp.push(performance.now() - started)

      started = performance.now()
      const connections = new SshConnections({})
      let first = 0
      let last = 0
      try {
        const ssh = await connections.host(worker)
        const result = await ssh.upload(file, '/usr/local/bin/k3s', {
          mode: 0o755,
          onProgress: (done, total) => {
            if (!first) first = performance.now()
            if (done === total) last = performance.now()
          },
        })
        if (result.skipped) throw new Error('the upload was skipped: the target was not removed')
      } finally {
        await connections.closeAll()
      }
      times.hybrid.push(performance.now() - started)
      times.transfer.push(last - first)
    }
    const rate = (ms: number) => `${((mib * 1000) / ms).toFixed(1)} MiB/s`
    const scp = median(times.scp)
    const hybrid = median(times.hybrid)
    const transfer = median(times.transfer)
    console.log(`SFTP upload of ${mib} MiB to a lab host, ${rounds} rounds interleaved, medians:`)
    console.log(`  scp (OpenSSH, connect + copy)                       ${(scp / 1000).toFixed(2)} s  ${rate(scp)}`)
    console.log(
      `  hybrid (connect + sha256 + upload + check + rename)  ${(hybrid / 1000).toFixed(2)} s  ${rate(hybrid)}`,
    )
    console.log(
      `  hybrid, the SFTP transfer alone                      ${(transfer / 1000).toFixed(2)} s  ${rate(transfer)}`,
    )
    console.log(`  fastPut: ${UPLOAD_CONCURRENCY} requests of ${UPLOAD_CHUNK_SIZE / 1024} KiB in flight`)
    console.log(`ratio hybrid/scp (throughput, target >= 0.8): ${(scp / hybrid).toFixed(2)}`)
  } finally {
    await lab.destroy()
    await rm(work, {recursive: true, force: true})
  }
}

await main()
