import {randomBytes} from 'node:crypto'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'

/**
 * The tunnel benchmark's API stand-in, in a process of its own as the k3s server is beside the supervisor:
 * served in the benchmark's own process, its 64 MiB answer took turns with ssh2 on one thread, which
 * OpenSSH's client, a process of its own, never had to. GET /big answers MIB random bytes, anything else
 * a short line. Prints the port of each address on one line of JSON, then serves until stdin closes.
 * Usage: node dist/scripts/bench/http-source.js MIB ADDRESS...
 */
const mib = Number(process.argv[2])
const body = randomBytes(mib << 20)

function serve(address: string): Promise<Server> {
  const server = createServer((request, response) => {
    const data = request.url === '/big' ? body : Buffer.from('ok\n')
    response.writeHead(200, {'content-length': data.length})
    response.end(data)
  })
  return new Promise((resolve) => server.listen(0, address, () => resolve(server)))
}

const servers = await Promise.all(process.argv.slice(3).map(serve))
console.log(JSON.stringify(servers.map((server) => (server.address() as AddressInfo).port)))
process.stdin.resume()
process.stdin.on('end', () => process.exit(0))
