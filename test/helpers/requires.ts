import {execFileSync} from 'node:child_process'

/**
 * Tiers that need a tool this machine may lack (runsc, go, sshd, root) skip with a printed reason, so a
 * skip is never silent. `.ci/run` installs every one of them, so in CI these tests run.
 */
export function skipUnless(ctx: Mocha.Context, condition: boolean, reason: string): void {
  if (condition) return
  process.stdout.write(`      skipped: ${reason}\n`)
  ctx.skip()
}

/** Is `tool` on PATH? */
export function hasTool(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v "$1"`, 'sh', tool], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
}

export function isRoot(): boolean {
  return process.getuid?.() === 0
}

/** Skip unless `tool` is on PATH, naming the Debian package that brings it. */
export function requireTool(ctx: Mocha.Context, tool: string, debianPackage = tool): void {
  skipUnless(ctx, hasTool(tool), `${tool} is not installed (apt-get install ${debianPackage}; .ci/run installs it)`)
}

export function requireRoot(ctx: Mocha.Context): void {
  skipUnless(ctx, isRoot(), 'needs root (namespaces, mounts); CI runs as root')
}
