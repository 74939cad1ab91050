import {BlockList, isIP} from 'node:net'

/**
 * Which proxy, if any, a request to a URL goes through, from the usual environment variables
 * (HTTPS_PROXY / HTTP_PROXY / NO_PROXY, lower case first, as curl reads them). Sandboxes often let traffic
 * out only through such a proxy (docs/architecture.md, "The k3s binary").
 *
 * NO_PROXY is taken literally: unlike Go's http.ProxyFromEnvironment, loopback is not bypassed unless
 * NO_PROXY names it, as curl and undici do; so a proxy a user configured is really the one used.
 */
export type ProxyEnv = Record<string, string | undefined>

/** The proxy URL for `url`, or undefined for a direct connection. */
export function proxyFor(url: URL, env: ProxyEnv = process.env): string | undefined {
  // As curl and Go do: HTTPS_PROXY for https URLs, HTTP_PROXY for http ones, no crossing over.
  const proxy = pick(env, url.protocol === 'https:' ? 'https_proxy' : 'http_proxy')
  if (!proxy) return undefined
  if (bypassed(url, pick(env, 'no_proxy') ?? '')) return undefined
  // "host:port" without a scheme is common in the wild; curl reads it as http://.
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`
}

function pick(env: ProxyEnv, lower: string): string | undefined {
  const value = env[lower] ?? env[lower.toUpperCase()]
  return value && value.trim() !== '' ? value.trim() : undefined
}

/**
 * Does NO_PROXY exempt `url`? Entries are separated by commas or spaces: `*` (everything), a host name
 * (itself and its subdomains; a leading `.` or `*.` means subdomains too), an IP address, a CIDR block, each
 * optionally with `:port`.
 */
export function bypassed(url: URL, noProxy: string): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase()
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
  for (const raw of noProxy.split(/[,\s]+/)) {
    const entry = raw.trim().toLowerCase()
    if (entry === '') continue
    if (entry === '*') return true
    const {name, entryPort} = splitPort(entry)
    if (entryPort !== undefined && entryPort !== port) continue
    if (name.includes('/')) {
      if (isIP(host) && inCidr(host, name)) return true
      continue
    }
    const domain = name.replace(/^\*?\./, '')
    if (host === domain || host.endsWith(`.${domain}`)) return true
  }
  return false
}

function splitPort(entry: string): {name: string; entryPort?: number} {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry)
  if (bracketed) return {name: bracketed[1], entryPort: bracketed[2] ? Number(bracketed[2]) : undefined}
  // A bare IPv6 address has several colons and no port.
  if (isIP(entry.split('/')[0]) === 6) return {name: entry}
  const withPort = /^(.+):(\d+)$/.exec(entry)
  return withPort ? {name: withPort[1], entryPort: Number(withPort[2])} : {name: entry}
}

/** Is `address` in the block `cidr` (node's BlockList: IPv4, IPv6, and IPv4-mapped IPv6 alike)? */
function inCidr(address: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/')
  const family = isIP(base)
  const bits = Number(bitsText)
  if (family === 0 || !Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) return false
  const block = new BlockList()
  block.addSubnet(base, bits, family === 4 ? 'ipv4' : 'ipv6')
  return block.check(address, isIP(address) === 4 ? 'ipv4' : 'ipv6')
}
