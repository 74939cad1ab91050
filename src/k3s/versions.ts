/**
 * k3s release names (v1.34.1+k3s1, v1.35.0-rc1+k3s1) in release order: the Kubernetes version, a
 * release candidate before its release, then k3s's own build number.
 */

interface K3sVersion {
  readonly numbers: readonly [number, number, number]
  /** The release candidate's number; Infinity for a release (it comes after every rc). */
  readonly rc: number
  readonly build: number
}

function parse(version: string): K3sVersion | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-rc(\d+))?(?:\+k3s(\d+))?$/.exec(version)
  if (!m) return undefined
  return {
    numbers: [Number(m[1]), Number(m[2]), Number(m[3])],
    rc: m[4] === undefined ? Infinity : Number(m[4]),
    build: m[5] === undefined ? 0 : Number(m[5]),
  }
}

/** Negative when `a` is older than `b`, 0 when equal, positive when newer; undefined when either is no release name. */
export function compareK3sVersions(a: string, b: string): number | undefined {
  const x = parse(a)
  const y = parse(b)
  if (!x || !y) return undefined
  for (let i = 0; i < 3; i++) if (x.numbers[i] !== y.numbers[i]) return x.numbers[i] - y.numbers[i]
  if (x.rc !== y.rc) return x.rc === Infinity ? 1 : y.rc === Infinity ? -1 : x.rc - y.rc
  return x.build - y.build
}
