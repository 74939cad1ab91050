import {rm} from 'node:fs/promises'

import {IntegrityError, sha256File} from './digest.js'
import {DownloadError, type HttpClient} from './http.js'
import {DEFAULT_IMAGE, imageTag, type ImageRef, parseImageRef} from './image-ref.js'
import {extractFromLayer, type TarFinding} from './layer-extract.js'
import {MANIFEST_TYPES, type Manifest, RegistrySession} from './registry-client.js'
import type {Arch} from './release-download.js'

/**
 * The k3s binary taken from the k3s OCI image (`bin/k3s` in rancher/k3s), for sandboxes whose proxy
 * allows a container registry but not GitHub's release storage: index → the linux/<arch> manifest →
 * its layers, top layer first, each downloaded whole and digest-verified before a byte of it is read.
 */
export const BINARY_IN_IMAGE = 'bin/k3s'

interface Descriptor {
  mediaType?: string
  digest: string
  size?: number
  platform?: {os?: string; architecture?: string; variant?: string}
}

export interface ImageDownload {
  client: HttpClient
  /** spec.k3s.image; tag = the version with + → - unless the reference names a tag or digest. */
  image?: string
  version: string
  arch: Arch
  pinned?: string
  /** Where the binary is written, and where a layer is kept while it is read. The caller removes both. */
  partial: string
  layerFile: string
  signal?: AbortSignal
  onProgress?: (bytes: number, total?: number) => void
}

/** The image reference the download will use, for messages about it. */
export function imageFor(options: Pick<ImageDownload, 'image' | 'version'>): ImageRef {
  return parseImageRef(options.image ?? DEFAULT_IMAGE, imageTag(options.version))
}

export async function downloadFromImage(options: ImageDownload): Promise<{sha256: string; image: string}> {
  const ref = imageFor(options)
  const session = new RegistrySession(ref, options.client, options.signal)
  const manifest = await platformManifest(session, await session.manifest(ref.reference), options.arch)
  const layers = (manifest.json.layers ?? []) as Descriptor[]
  const total = layers.reduce((sum, layer) => sum + (layer.size ?? 0), 0)
  let before = 0
  try {
    for (let i = layers.length - 1; i >= 0; i--) {
      const layer = layers[i]
      await rm(options.layerFile, {force: true})
      await session.blobToFile(layer.digest, options.layerFile, (bytes) =>
        options.onProgress?.(before + bytes, total || undefined),
      )
      before += layer.size ?? 0
      const finding = await extract(options.layerFile, layer, options.partial)
      if (finding.kind === 'file') break
      if (finding.kind === 'link')
        throw new DownloadError(
          'content',
          `${BINARY_IN_IMAGE} in ${ref.display} is a link to ${finding.target}, not the binary`,
        )
      if (finding.kind === 'whiteout' || i === 0)
        throw new DownloadError('content', `${ref.display} (linux/${options.arch}) has no ${BINARY_IN_IMAGE}`)
    }
  } finally {
    await rm(options.layerFile, {force: true})
  }
  const sha256 = await sha256File(options.partial)
  if (options.pinned && sha256 !== options.pinned) {
    throw new IntegrityError(
      `The k3s binary in image ${ref.display} has sha256 ${sha256}, but spec.k3s.sha256 says ${options.pinned}; nothing was cached.`,
    )
  }
  return {sha256, image: ref.display}
}

/** From an index (or manifest list) the linux/<arch> manifest; a single manifest is checked against its config. */
async function platformManifest(session: RegistrySession, top: Manifest, arch: Arch): Promise<Manifest> {
  const where = `${session.ref.display}`
  if (
    top.mediaType === MANIFEST_TYPES.ociIndex ||
    top.mediaType === MANIFEST_TYPES.dockerList ||
    Array.isArray(top.json.manifests)
  ) {
    const entries = (top.json.manifests ?? []) as Descriptor[]
    const match = entries.find(
      (entry) =>
        entry.platform?.os === 'linux' &&
        entry.platform.architecture === arch &&
        (arch !== 'arm64' || !entry.platform.variant || entry.platform.variant === 'v8'),
    )
    if (!match) {
      const offered =
        entries.map((entry) => `${entry.platform?.os}/${entry.platform?.architecture}`).join(', ') || 'none'
      throw new DownloadError('content', `${where} has no linux/${arch} image (it has ${offered})`)
    }
    return session.manifest(match.digest)
  }
  if (top.mediaType !== MANIFEST_TYPES.ociManifest && top.mediaType !== MANIFEST_TYPES.dockerManifest) {
    throw new DownloadError('content', `${where} is a ${top.mediaType || 'manifest of unknown type'}, not an image`)
  }
  const configDescriptor = top.json.config as Descriptor | undefined
  if (!configDescriptor?.digest) throw new DownloadError('content', `${where} has no config`)
  const config = JSON.parse((await session.smallBlob(configDescriptor.digest)).toString('utf8')) as {
    os?: string
    architecture?: string
  }
  if (config.os !== 'linux' || config.architecture !== arch) {
    throw new DownloadError('content', `${where} is a ${config.os}/${config.architecture} image, not linux/${arch}`)
  }
  return top
}

/** Read one verified layer file and write bin/k3s from it, if it is there. */
async function extract(layerFile: string, layer: Descriptor, target: string): Promise<TarFinding> {
  try {
    return await extractFromLayer(layerFile, BINARY_IN_IMAGE, target)
  } catch (error) {
    throw new DownloadError(
      'content',
      `the layer ${layer.digest} could not be read as a tar archive (${(error as Error).message})`,
    )
  }
}
