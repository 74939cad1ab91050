import {randomBytes} from 'node:crypto'
import {readFile, rm} from 'node:fs/promises'

import {HybridError, messageOf} from '../errors.js'
import {agentTokenSecretPath} from '../k3s/server-config.js'
import {registerSecret} from '../log/redact.js'
import type {Phase} from '../plan/index.js'
import {writeFileAtomic} from '../util/fs-atomic.js'
import {takeSecretEnv} from '../util/secret-env.js'
import {CONTROL_PLANE_HOST, type ClusterContext, type InventoryInput, type TokenFile} from './context.js'

/**
 * The cluster token (spec.token): from its file, created 0600 with a random token when missing; or from
 * an environment variable, copied into a 0600 file in the cluster's state directory, because k3s gets a
 * token *file* (a token on a command line is visible to every user of the machine).
 */
export const prepareToken: Phase<ClusterContext & InventoryInput, TokenFile> = {
  title: 'prepare the cluster token',
  async run(ctx) {
    const server = await serverToken(ctx)
    const agent = await agentToken(ctx)
    return {...server, ...agent}
  },
  async cleanUp(ctx) {
    // A failed first `up` leaves nothing behind: not even the tokens it made up (the data dir goes too).
    if (ctx.dryRun) return
    if (ctx.createdTokenFile) await rm(ctx.createdTokenFile, {force: true})
    if (ctx.createdAgentTokenFile) await rm(ctx.createdAgentTokenFile, {force: true})
  },
}

type ServerTokenFile = Pick<TokenFile, 'tokenFile' | 'createdTokenFile'>
type AgentTokenFile = Pick<TokenFile, 'agentTokenFile' | 'createdAgentTokenFile'>

async function serverToken(ctx: ClusterContext & InventoryInput): Promise<ServerTokenFile> {
  const source = ctx.inventory.token
  if (source.kind === 'env') {
    const token = takeSecretEnv(source.env)?.trim()
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
  const existing = await readSecretFile(source.file, 'the token file')
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
}

/**
 * The agent token's secret: made up once (0600, in k3s's data dir, so it lasts as long as the cluster's CA)
 * and kept. k3s gives it the k3s:agent role only; the workers get the token k3s writes from it, never the
 * cluster token (docs/architecture.md, "Trust and failure model").
 */
async function agentToken(ctx: ClusterContext & InventoryInput): Promise<AgentTokenFile> {
  const file = agentTokenSecretPath(ctx.inventory.controlPlane.dataDir)
  const existing = await readSecretFile(file, 'the agent token file')
  if (existing) {
    registerSecret(existing)
    return {agentTokenFile: file}
  }
  const secret = randomBytes(32).toString('hex')
  registerSecret(secret)
  await ctx.wet(CONTROL_PLANE_HOST, `create the agent token file ${file} (0600) with a random secret`, () =>
    writeFileAtomic(file, `${secret}\n`, 0o600),
  )
  return {agentTokenFile: file, createdAgentTokenFile: file}
}

/** A secret file's trimmed text; undefined when it does not exist. */
async function readSecretFile(file: string, what: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new HybridError('TOKEN_UNREADABLE', `cannot read ${what} ${file}: ${messageOf(error)}`)
  }
}
