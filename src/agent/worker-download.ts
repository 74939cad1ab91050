import type {Host} from '../remote/host.js'
import {fetchK3sOnWorker, hasProgram} from './binary-fetch.js'

/**
 * The k3s release fetched by the worker itself (spec.k3s.distribute: worker-download; docs/architecture.md,
 * "Distributing the k3s binary"), with curl, else wget, as root; checked against the sha256 hybrid
 * knows before it is moved into place.
 */

const DOWNLOAD = [
  'set -e',
  'if command -v curl >/dev/null 2>&1; then exec curl -fsSL --max-time "$2" -o "$3" -- "$1"; fi',
  'if command -v wget >/dev/null 2>&1; then exec wget -q -T 30 -O "$3" -- "$1"; fi',
  'echo "neither curl nor wget is installed" >&2',
  'exit 69',
].join('\n')

/** Why the worker cannot download at all (no curl, no wget), or undefined when it can try. */
export async function cannotDownload(host: Host): Promise<string | undefined> {
  if ((await hasProgram(host, 'curl')) || (await hasProgram(host, 'wget'))) return undefined
  return 'it has neither curl nor wget'
}

export function downloadOnWorker(host: Host, url: string, sha256: string, limitSeconds: number): Promise<void> {
  return fetchK3sOnWorker(
    host,
    {argv: ['sh', '-c', DOWNLOAD, 'sh', url, String(limitSeconds)], timeoutSeconds: limitSeconds + 10},
    sha256,
    `from ${url}`,
  )
}
