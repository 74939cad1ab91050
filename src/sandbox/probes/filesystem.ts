import {statfs} from 'node:fs/promises'

import {mountContaining, readMountinfo} from './mountinfo.js'
import {nearestExistingDir} from './scratch.js'

/**
 * The data dir's filesystem, from statfs(2) (the magic number names it) and from mountinfo (its mount
 * and device). cAdvisor finds the kubelet's root filesystem by the device numbers of its mount; an
 * anonymous device (major 0: 9p, tmpfs, overlay, fuse, nfs) has no block device behind it, so cAdvisor
 * cannot read its stats. btrfs and zfs also use anonymous devices, and cAdvisor handles both itself.
 */
export interface FilesystemFacts {
  /** The directory actually examined: the data dir, or its nearest existing ancestor. */
  readonly path: string
  /** Filesystem name from the statfs magic ("v9fs", "ext2/ext3/ext4", …), or "0x…" when unknown. */
  readonly type: string
  readonly magic: string
  readonly mountPoint?: string
  /** The type mountinfo names ("9p", "ext4", …). */
  readonly mountType?: string
  readonly device?: string
  /** cAdvisor can find a device for it. */
  readonly statsReadable: boolean
  /** statfs failed: its error. */
  readonly error?: string
}

const MAGIC: Readonly<Record<number, string>> = {
  0xef53: 'ext2/ext3/ext4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x2fc12fc1: 'zfs',
  0x01021994: 'tmpfs',
  0x794c7630: 'overlay',
  0x01021997: 'v9fs',
  0x65735546: 'fuse',
  0x6969: 'nfs',
  0xff534d42: 'cifs',
  0x858458f6: 'ramfs',
  0x73717368: 'squashfs',
  0x5346544e: 'ntfs',
  0x4d44: 'vfat',
  0xf2f52010: 'f2fs',
  0x9fa0: 'proc',
  0x62656572: 'sysfs',
}

const ANONYMOUS_BUT_STATTABLE = new Set(['btrfs', 'zfs'])

export async function probeFilesystem(dataDir: string): Promise<FilesystemFacts> {
  const path = await nearestExistingDir(dataDir)
  const mount = mountContaining(await readMountinfo(), path)
  const fromMount = mount ? {mountPoint: mount.mountPoint, mountType: mount.fsType, device: mount.device} : {}
  let magic: number
  try {
    magic = (await statfs(path)).type
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error)
    return {
      path,
      type: mount?.fsType ?? 'unknown',
      magic: '',
      ...fromMount,
      statsReadable: false,
      error: `statfs ${path}: ${code}`,
    }
  }
  const type = MAGIC[magic] ?? `0x${magic.toString(16)}`
  const major = mount ? Number(mount.device.split(':')[0]) : Number.NaN
  const statsReadable = ANONYMOUS_BUT_STATTABLE.has(type) || (Number.isFinite(major) && major !== 0)
  return {path, type, magic: `0x${magic.toString(16)}`, ...fromMount, statsReadable}
}

export function describeFilesystem(facts: FilesystemFacts): string {
  const where = facts.path
  if (facts.error) return `${facts.error}`
  const mount = facts.mountPoint
    ? `, mounted at ${facts.mountPoint} as ${facts.mountType} from device ${facts.device}`
    : ''
  return `${where} is on ${facts.type} (statfs magic ${facts.magic})${mount}`
}
