import type {WorkerSpec} from '../../src/inventory/model.js'
import {ApiTunnel} from '../../src/tunnel/api-tunnel.js'

/**
 * hybrid's API tunnel in a process of its own, as the supervisor holds it, so that the tunnel benchmark
 * counts its CPU as it counts OpenSSH's client's: by its process. Stops the tunnel and exits when stdin
 * closes.
 * Usage: node dist/scripts/bench/tunnel-process.js JSON   (JSON: {worker, bindAddress, bindPort, targetPort})
 */
const target = JSON.parse(process.argv[2] ?? '{}') as {
  worker: WorkerSpec
  bindAddress: string
  bindPort: number
  targetPort: number
}
const tunnel = new ApiTunnel(target)
process.stdin.resume()
process.stdin.on('end', () => void tunnel.stop().then(() => process.exit(0)))
