import {randomBytes} from 'node:crypto'
import {readFile, rm} from 'node:fs/promises'

import {HybridError, messageOf} from '../errors.js'
import {registerSecret} from '../log/redact.js'
import type {Phase} from '../plan/index.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {CONTROL_PLANE_HOST, type ClusterContext, type InventoryInput, type TokenFile} from './context.js'

/**
 * The cluster token (spec.token): from its file, created 0600 with a random token when missing; or from
 * an environment variable, copied into a 0600 file in the cluster's state directory, because k3s gets a
 * token *file* (a token on a command line is visible to every user of the machine).
 */
export const prepareToken: Phase<ClusterContext & InventoryInput, TokenFile> = {
  title: 'prepare the cluster token',
  async run(ctx) {
    const source = ctx.inventory.token
    if (source.kind === 'env') {
      const token = process.env[source.env]?.trim()
      if (!token) {
        const sentence = `spec.token.env names ${source.env}, but that environment variable is not set (or empty)`
        throw new HybridError('TOKEN_ENV_UNSET', sentence, {exitCode: 2})
      }
      registerSecret(token)
      await ctx.wet(CONTROL_PLANE_HOST, `write the token from $${source.env} to ${ctx.paths.token} (0600)`, () =>
        writeFileAtomic(ctx.paths.token, `${token}\n`, 0o600),
      )
      return {tokenFile: ctx.paths.token}
    }
    let existing: string | undefined
    try {
      existing = (await readFile(source.file, 'utf8')).trim()
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new HybridError('TOKEN_UNREADABLE', `cannot read the token file ${source.file}: ${messageOf(error)}`)
    }
    if (existing) {
      registerSecret(existing)
      return {tokenFile: source.file}
    }
    const token = randomBytes(32).toString('hex')
    registerSecret(token)
    await ctx.wet(CONTROL_PLANE_HOST, `create the token file ${source.file} (0600) with a random token`, () =>
      writeFileAtomic(source.file, `${token}\n`, 0o600),
    )
    return {tokenFile: source.file, createdTokenFile: source.file}
  },
  async cleanUp(ctx) {
    // A failed first `up` leaves nothing behind: not even the token it made up (the data dir goes too).
    if (ctx.createdTokenFile && !ctx.dryRun) await rm(ctx.createdTokenFile, {force: true})
  },
}
