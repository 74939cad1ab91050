import {type ErrorCode, HybridError} from '../errors.js'

/**
 * What went wrong reaching or using a worker: a stable code (for --json, and for the checks that sort
 * failures into columns) and one sentence that names the host and, where there is one, the fix.
 *   SSH_TIMEOUT           nothing answered at the address within the connect timeout
 *   SSH_REFUSED           the address answered with a refusal (no sshd on that port)
 *   SSH_UNREACHABLE       no route, or no such name
 *   SSH_PROXY_REFUSED     the HTTP CONNECT proxy would not open the tunnel (its status line is quoted)
 *   SSH_BASTION_FAILED    the bastion could not be reached or would not forward
 *   SSH_HOST_KEY_UNKNOWN  the host key is not in known_hosts (strict) or not pinned
 *   SSH_HOST_KEY_CHANGED  the host key differs from the one recorded or pinned
 *   SSH_AUTH_REFUSED      sshd refused every key offered
 *   SSH_NO_KEY            no key to offer: no readable identity file, no agent
 *   SSH_CONNECTION_LOST   the connection broke, during the handshake or after
 *   SUDO_UNAVAILABLE      the login user cannot become root the way ssh.sudo says
 *   REMOTE_COMMAND_FAILED a command ran and failed, or sshd would not run it
 *   REMOTE_COMMAND_TIMEOUT a command did not finish within ssh.commandTimeoutSeconds (it was stopped)
 *   REMOTE_OUTPUT_LIMIT   a command printed more than ssh.outputLimitBytes (it was stopped)
 *   UPLOAD_FAILED         an upload broke off or arrived with another digest
 */
export type RemoteErrorCode = Extract<
  ErrorCode,
  `SSH_${string}` | 'SUDO_UNAVAILABLE' | `REMOTE_${string}` | 'UPLOAD_FAILED'
>

export class RemoteError extends HybridError {
  constructor(
    override readonly code: RemoteErrorCode,
    message: string,
    readonly host: string,
  ) {
    super(code, message)
    this.name = 'RemoteError'
  }

  override toJSON(): Record<string, unknown> {
    return {...super.toJSON(), host: this.host}
  }
}
