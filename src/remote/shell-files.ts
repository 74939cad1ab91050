import {createHash} from 'node:crypto'

import type {FileStat, RunOptions, WriteOptions} from './host.js'

/**
 * File operations as small POSIX shell programs run through a Host's command runner, so they work the
 * same over SSH and under sudo. Paths and values are passed as positional arguments ("$1"…), never
 * pasted into the program text. Data travels on standard input, never on a command line.
 */

export interface RawResult {
  readonly exitCode: number | null
  readonly signal?: string
  readonly stdout: Buffer
  readonly stderr: string
}

export type RawRun = (argv: readonly string[], options?: RunOptions) => Promise<RawResult>

/**
 * After a rename, flush the directory holding the new name (coreutils' `sync DIR`, 8.24 and later; older
 * ones, or busybox, refuse or sync everything: either way the move is done, so failure is ignored).
 */
const SYNC_DIR = 'sync -- "$(dirname -- "$1")" 2>/dev/null || true'

/** Exit status the programs below use for "no such file" (sysexits' EX_NOINPUT). */
const MISSING = 66

/** Thrown with the program's stderr; the Host turns it into a RemoteError naming itself. */
export class ShellFileError extends Error {}

function sh(program: string, ...args: string[]): string[] {
  return ['sh', '-c', program, 'sh', ...args]
}

function failed(what: string, path: string, result: RawResult): ShellFileError {
  const why = result.stderr.trim().split('\n').pop() || `exit ${result.exitCode ?? result.signal}`
  return new ShellFileError(`cannot ${what} ${path}: ${why}`)
}

export async function readFileVia(run: RawRun, path: string, sudo = false): Promise<Buffer | undefined> {
  const result = await run(sh(`[ -e "$1" ] || exit ${MISSING}; exec cat -- "$1"`, path), {sudo})
  if (result.exitCode === MISSING) return undefined
  if (result.exitCode !== 0) throw failed('read', path, result)
  return result.stdout
}

/** Octal text for chmod: 0o600 → "600". */
export function octal(mode: number): string {
  return (mode & 0o7777).toString(8)
}

/**
 * Write `data` to a temp file beside `path` (created under umask 077, so never readable by others
 * before its mode is set), set mode and owner, fsync, and rename it over `path`. The temp file is
 * removed when any step fails. Missing parent directories are created with the usual umask.
 */
export async function writeFileVia(
  run: RawRun,
  path: string,
  data: string | Uint8Array,
  options: WriteOptions,
): Promise<void> {
  const program = [
    'set -e',
    'd=$(dirname -- "$1")',
    'mkdir -p -- "$d"',
    'umask 077',
    't="$d/.$(basename -- "$1").hybrid-$$"',
    `trap 'rm -f -- "$t"' EXIT`,
    'cat > "$t"',
    'chmod "$2" "$t"',
    '[ -z "$3" ] || chown "$3" "$t"',
    'sync -- "$t" 2>/dev/null || true',
    // What arrived must be what was sent before it replaces the old file (a cut stream leaves a short one).
    'n=$(wc -c < "$t" | tr -d " ")',
    's=$(sha256sum < "$t" | cut -d" " -f1)',
    'if [ "$n" != "$4" ] || [ "$s" != "$5" ]; then',
    '  echo "the copy received has $n bytes and sha256 $s, not the $4 bytes and sha256 $5 sent; the old file is left as it was" >&2',
    '  exit 1',
    'fi',
    'mv -f -- "$t" "$1"',
    SYNC_DIR,
  ].join('\n')
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  const digest = createHash('sha256').update(bytes).digest('hex')
  const args = [path, octal(options.mode), options.owner ?? '', String(bytes.byteLength), digest]
  const result = await run(sh(program, ...args), {
    stdin: bytes,
    sudo: options.sudo,
  })
  if (result.exitCode !== 0) throw failed('write', path, result)
}

export async function statVia(run: RawRun, path: string, sudo = false): Promise<FileStat | undefined> {
  const result = await run(
    sh(`[ -e "$1" ] || [ -L "$1" ] || exit ${MISSING}; exec stat -c '%F|%s|%a|%u|%g' -- "$1"`, path),
    {sudo},
  )
  if (result.exitCode === MISSING) return undefined
  if (result.exitCode !== 0) throw failed('stat', path, result)
  const [kind, size, mode, uid, gid] = result.stdout.toString().trim().split('|')
  const type = /regular/.test(kind)
    ? 'file'
    : kind === 'directory'
      ? 'directory'
      : kind === 'symbolic link'
        ? 'symlink'
        : 'other'
  return {type, size: Number(size), mode: Number.parseInt(mode, 8), uid: Number(uid), gid: Number(gid)}
}

/** The file's sha256 on the host (hex), or undefined when it does not exist. */
export async function sha256Via(run: RawRun, path: string, sudo = false): Promise<string | undefined> {
  const result = await run(sh(`[ -f "$1" ] || exit ${MISSING}; exec sha256sum < "$1"`, path), {sudo})
  if (result.exitCode === MISSING) return undefined
  if (result.exitCode !== 0) throw failed('checksum', path, result)
  return /^[0-9a-f]{64}/.exec(result.stdout.toString())?.[0]
}

/*
 * The digests below are read from stdin: `sha256sum FILE` escapes a name holding a backslash or a newline
 * and then starts its line with a backslash.
 */

/**
 * For a program run with `lifeline` (its stdin held open by the run that started it): a watcher reads
 * stdin until its end and then stops the program, so a run killed (or cut off) while the program copies
 * and checks a large file leaves nothing moved into place behind it; sshd, for instance, signals nothing
 * to a command whose client has gone. The program ends the watcher (`kill "$lifeline"`) right before its
 * last step, and on any exit. Background jobs get /dev/null for stdin, hence the duplicate on fd 3;
 * the watcher holds none of the channel's output open. A TERM is taken after
 * the running child ends, so the EXIT trap still removes the temp copy.
 */
const LIFELINE = [
  `trap 'exit 1' TERM`,
  'exec 3<&0',
  '{ cat <&3 >/dev/null; kill -TERM $$; } >/dev/null 2>&1 &',
  'lifeline=$!',
  `trap 'kill "$lifeline" 2>/dev/null || true' EXIT`,
]

/** The copy about to be moved into place does not have the digest it must have; nothing was moved. */
export class DigestMismatch extends ShellFileError {
  constructor(
    readonly path: string,
    readonly actual: string | undefined,
  ) {
    super(`the copy for ${path} has sha256 ${actual ?? 'unknown'}`)
  }
}

/** Exit status of the program below when the digest differs (sysexits' EX_DATAERR). */
const DIGEST_DIFFERS = 65

/**
 * Move a temp file into place: copied beside `path` first when it lies elsewhere (a staging directory:
 * rename is only atomic within one filesystem), mode and owner set; then, with `sha256`, the digest of
 * that copy (owned by root under sudo, so nothing the login user can change) is checked in the same
 * program right before the rename, and a copy that differs is removed instead (DigestMismatch).
 */
export async function placeVia(
  run: RawRun,
  temp: string,
  path: string,
  options: WriteOptions & {sameDir: boolean; sha256?: string},
): Promise<void> {
  const program = [
    'set -e',
    ...LIFELINE,
    'src="$1"',
    'if [ "$5" != same ]; then',
    '  mkdir -p -- "$(dirname -- "$4")"',
    '  umask 077',
    '  t="$(dirname -- "$4")/.$(basename -- "$4").hybrid-$$"',
    `  trap 'rm -f -- "$t"; kill "$lifeline" 2>/dev/null || true' EXIT`,
    '  cp -- "$src" "$t"',
    '  src="$t"',
    'fi',
    'chmod "$2" "$src"',
    '[ -z "$3" ] || chown "$3" "$src"',
    'if [ -n "$6" ]; then',
    '  s=$(sha256sum < "$src" | cut -d" " -f1)',
    `  if [ "$s" != "$6" ]; then rm -f -- "$src"; echo "$s"; exit ${DIGEST_DIFFERS}; fi`,
    'fi',
    'kill "$lifeline" 2>/dev/null || true',
    'mv -f -- "$src" "$4"',
    SYNC_DIR.replace('"$1"', '"$4"'),
  ].join('\n')
  const result = await run(
    sh(
      program,
      temp,
      octal(options.mode),
      options.owner ?? '',
      path,
      options.sameDir ? 'same' : 'copy',
      options.sha256 ?? '',
    ),
    {sudo: options.sudo, lifeline: true},
  )
  if (result.exitCode === DIGEST_DIFFERS)
    throw new DigestMismatch(path, /^[0-9a-f]{64}/.exec(result.stdout.toString())?.[0])
  if (result.exitCode !== 0) throw failed('move into place', path, result)
}

/**
 * Remove temp files of earlier runs matching `pattern` (a find -name glob) in `dir` that nobody has
 * written to for `minutes` (a run killed mid-upload leaves one; a live upload keeps its file fresh).
 */
export async function sweepStaleVia(
  run: RawRun,
  dir: string,
  pattern: string,
  minutes: number,
  sudo = false,
): Promise<void> {
  await run(
    sh(
      '[ -d "$1" ] || exit 0; exec find "$1" -maxdepth 1 -type f -name "$2" -mmin "+$3" -exec rm -f -- {} +',
      dir,
      pattern,
      String(minutes),
    ),
    {sudo},
  )
}

export async function removeVia(run: RawRun, path: string, sudo = false): Promise<void> {
  await run(['rm', '-f', '--', path], {sudo})
}
