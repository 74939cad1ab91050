/**
 * Secrets that reach hybrid through its environment (the sudo password, the cluster token named by
 * spec.token.env) are read once into memory and taken out of `process.env`, so that no child hybrid
 * starts — the detached supervisor, k3s, the interceptor's tracee, tools — inherits them
 * (docs/architecture.md, "Trust and failure model").
 */
const taken = new Map<string, string>()

/** Read `name` from the environment into memory and remove it there; its value from then on. */
export function takeSecretEnv(name: string): string | undefined {
  if (!taken.has(name) && process.env[name] !== undefined) taken.set(name, process.env[name])
  delete process.env[name]
  return taken.get(name)
}

/** This process's environment with the secrets taken out of it put back: for code that reads them, never for a child. */
export function withSecrets(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {...env, ...Object.fromEntries(taken)}
}
