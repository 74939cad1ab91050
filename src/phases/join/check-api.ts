import {checkApiFromWorker} from '../../agent/api-check.js'
import type {HostHandle} from '../../plan/index.js'
import {connected, type JoinStep, type JoinTarget} from './join-target.js'

/**
 * Before anything of k3s is installed: from the worker, the API answers at the address its agent will
 * use (through the tunnel in tunnel mode), it is this cluster's (the token's CA hash), and it takes the
 * token. Read-only, so it runs under --dry-run too (when the control plane is up).
 */
export const checkApiStep: JoinStep = {
  title: 'check the API from the worker',
  async run(target: JoinTarget, handle: HostHandle) {
    const {run} = target
    const {host} = connected(target)
    if (!run.token) return // --dry-run before the control plane ever ran: nothing to check against
    const check = await checkApiFromWorker(host, run.server, run.token)
    handle.logger.debug({server: run.server, caVerified: check.caVerified}, 'the API answers from the worker')
  },
}
