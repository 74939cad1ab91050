import {execFile} from 'node:child_process'
import {mkdir, mkdtemp, readFile, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {gunzipSync} from 'node:zlib'

import {digestOf, type Registry} from './k3s-registry.js'

/**
 * Build a k3s-like image (a base layer with bin/k3s, made by GNU tar, under a top layer without it) for
 * each arch and push it through the registry HTTP API: blob uploads, per-arch manifests by digest, then
 * a manifest list (Docker) or image index (OCI) under the tag — what `docker buildx build --push` does.
 */
const run = promisify(execFile)

export type Arch = 'amd64' | 'arm64'
export type ImageFormat = 'oci' | 'docker'

const TYPES = {
  oci: {
    index: 'application/vnd.oci.image.index.v1+json',
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  docker: {
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  },
}

export interface PushOptions {
  repository: string
  tag: string
  binaries: Partial<Record<Arch, Buffer>>
  format: ImageFormat
  /** Push only this arch's manifest under the tag (no index). */
  single?: Arch
}

export interface PushedImage {
  /** Digest of each arch's layer that holds bin/k3s. */
  k3sLayer: Partial<Record<Arch, string>>
  tagDigest: string
}

export async function pushK3sImage(registry: Registry, dir: string, options: PushOptions): Promise<PushedImage> {
  const types = TYPES[options.format]
  const token = await registry.pushToken(options.repository)
  const auth: Record<string, string> = token ? {authorization: `Bearer ${token}`} : {}
  const api = `http://${registry.host}/v2/${options.repository}`
  const k3sLayer: PushedImage['k3sLayer'] = {}
  const manifests: {digest: string; size: number; arch: Arch; body: Buffer}[] = []
  const build = await mkdtemp(join(dir, 'build-'))
  for (const [arch, binary] of Object.entries(options.binaries) as [Arch, Buffer][]) {
    const base = await layer(join(build, `${arch}-base`), async (root) => {
      await mkdir(join(root, 'bin'), {recursive: true})
      await mkdir(join(root, 'etc'), {recursive: true})
      await writeFile(join(root, 'bin', 'k3s'), binary, {mode: 0o755})
      await symlink('k3s', join(root, 'bin', 'kubectl'))
      await writeFile(join(root, 'etc', 'os-release'), 'NAME="k3s test image"\n')
    })
    const top = await layer(join(build, `${arch}-top`), async (root) => {
      await mkdir(join(root, 'etc'), {recursive: true})
      await writeFile(join(root, 'etc', 'hybrid-test'), `top layer for ${arch}\n`)
    })
    const config = Buffer.from(
      JSON.stringify({
        architecture: arch,
        os: 'linux',
        config: {},
        rootfs: {type: 'layers', diff_ids: [base.diffId, top.diffId]},
      }),
    )
    for (const blob of [base.gz, top.gz, config]) await uploadBlob(api, auth, blob)
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: types.manifest,
        config: {mediaType: types.config, digest: digestOf(config), size: config.length},
        layers: [base.gz, top.gz].map((gz) => ({mediaType: types.layer, digest: digestOf(gz), size: gz.length})),
      }),
    )
    k3sLayer[arch] = digestOf(base.gz)
    manifests.push({digest: digestOf(manifest), size: manifest.length, arch, body: manifest})
  }
  if (options.single) {
    const only = manifests.find((m) => m.arch === options.single) as (typeof manifests)[number]
    await putManifest(api, auth, options.tag, types.manifest, only.body)
    return {k3sLayer, tagDigest: only.digest}
  }
  for (const m of manifests) await putManifest(api, auth, m.digest, types.manifest, m.body)
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: types.index,
      manifests: manifests.map((m) => ({
        mediaType: types.manifest,
        digest: m.digest,
        size: m.size,
        platform: {architecture: m.arch, os: 'linux', ...(m.arch === 'arm64' ? {variant: 'v8'} : {})},
      })),
    }),
  )
  await putManifest(api, auth, options.tag, types.index, index)
  return {k3sLayer, tagDigest: digestOf(index)}
}

/** A gzip tar layer made by GNU tar from the tree `fill` writes (entries named ./bin/k3s, as buildkit does). */
async function layer(root: string, fill: (root: string) => Promise<void>): Promise<{gz: Buffer; diffId: string}> {
  await mkdir(root, {recursive: true})
  await fill(root)
  const file = `${root}.tar.gz`
  await run('tar', ['-C', root, '--owner=0', '--group=0', '--numeric-owner', '-czf', file, '.'])
  const gz = await readFile(file)
  return {gz, diffId: digestOf(gunzipSync(gz))}
}

async function uploadBlob(api: string, auth: Record<string, string>, blob: Buffer): Promise<void> {
  const start = await fetch(`${api}/blobs/uploads/`, {method: 'POST', headers: auth})
  await start.arrayBuffer()
  if (start.status !== 202) throw new Error(`blob upload start: HTTP ${start.status}`)
  const location = new URL(start.headers.get('location') ?? '', api)
  location.searchParams.set('digest', digestOf(blob))
  const put = await fetch(location, {
    method: 'PUT',
    headers: {...auth, 'content-type': 'application/octet-stream'},
    body: blob,
  })
  await put.arrayBuffer()
  if (put.status !== 201) throw new Error(`blob upload: HTTP ${put.status}`)
}

async function putManifest(
  api: string,
  auth: Record<string, string>,
  reference: string,
  mediaType: string,
  body: Buffer,
): Promise<void> {
  const put = await fetch(`${api}/manifests/${reference}`, {
    method: 'PUT',
    headers: {...auth, 'content-type': mediaType},
    body,
  })
  const text = await put.text()
  if (put.status !== 201) throw new Error(`manifest ${reference}: HTTP ${put.status} ${text}`)
}
