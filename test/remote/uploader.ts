/**
 * A process of its own for the killed-upload test: uploads FILE to PATH on the worker given as JSON, with
 * hybrid's own code, as `up` does with the k3s binary, so that the test can SIGKILL it midway.
 *   node uploader.js WORKER_JSON FILE PATH
 */
import type {WorkerSpec} from '../../src/inventory/model.js'
import {SshConnections} from '../../src/remote/connections.js'

const [worker, file, path] = process.argv.slice(2)
const connections = new SshConnections({})
const host = await connections.host(JSON.parse(worker) as WorkerSpec)
await host.upload(file, path, {mode: 0o755})
await connections.closeAll()
process.stdout.write('placed\n')
