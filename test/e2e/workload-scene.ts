import {strict as assert} from 'node:assert'
import {existsSync} from 'node:fs'
import {
  copyFile,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  rmdir,
  writeFile,
} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {WORKER_PATHS} from '../../src/agent/worker-paths.js'
import {FLANNEL_CNI_PLUGIN_IMAGE, FLANNEL_IMAGE} from '../../src/kube/flannel.js'
import {commandLine} from '../../src/remote/quote.js'
import {createLab, type Lab, type LabHost} from '../helpers/lab.js'
import {writeLabInventory} from '../remote/lab-workers.js'
import {
  type ClusterFixture,
  cleanupFixture,
  fixtureEnv,
  freePort,
  hybrid,
  kubectl,
  recordPids,
  run,
} from '../system/cluster-fixture.js'

/**
 * The scene of the real-k3s workload tier: a real k3s server with its agent on this machine (the sandbox
 * Node), three lab hosts joined as workers in tunnel mode, hybrid's flannel on them, and a Deployment of
 * agnhost pods spread over them.
 *
 * A lab host is a network namespace and a mount namespace on this machine's kernel. What a real kubelet
 * and containerd take from "their machine" and the lab does not make private is made private here, inside
 * each host's own namespaces, so that the three workers behave as three machines:
 * - routes: the hosts reach the lab and nothing else (their default route is this machine, which may
 *   forward to its uplink, so an image pull or a DNS query could leave it); images come as archives;
 * - /var/log/pods, /var/log/containers: a tmpfs each (kubelets that share them remove each other's pods'
 *   logs); /var/lib (so /var/lib/kubelet and /var/lib/cni) is each host's own already (the lab's overlay),
 *   and stays removable, as an uninstall removes those directories;
 * - cgroups: the hierarchies are mounted in the host (its /sys is a sysfs of its own, without them), and
 *   each kubelet gets its own cgroup root (a kubelet kills the processes of pod cgroups it does not know);
 * - kube-proxy leaves the kernel-wide conntrack table alone (it is read-only outside the first network
 *   namespace), as in kind's nodes.
 * Each mount lives in the host's mount namespace and goes with it; the cgroups are recorded and removed
 * once the lab is gone. Mount points the machine lacks are made on it, recorded, and removed at the end
 * when nothing is mounted on them and they are still empty.
 */

export const CLUSTER = 'workloads'
export const SANDBOX_NODE = `${CLUSTER}-server`
export const WORKERS = ['w1', 'w2', 'w3']
/** The workload image; a mirror of agnhost may replace it (the tests run `netexec`, `curl` and `sh` in it). */
export const DEFAULT_IMAGE = 'registry.k8s.io/e2e-test-images/agnhost:2.53'

/** k3s's default --service-cidr: hostNetwork pods (flannel) dial the API's ClusterIP, which kube-proxy rewrites. */
const K3S_SERVICE_CIDR = '10.43.0.0/16'
const PRIVATE_DIRS = ['/var/log/pods', '/var/log/containers']
/** What k3s imports into containerd when its agent starts (k3s's airgap images directory). */
const IMAGES_DIR = `${WORKER_PATHS.dataDir}/agent/images`
const ARCHIVE = /\.(tar|tar\.gz|tgz|tar\.bz2|tbz|tar\.zst|tzst|tar\.lz4)$/

export interface WorkloadScene extends ClusterFixture {
  readonly lab: Lab
  readonly kubeconfig: string
  /** Cgroups made for the workers' kubelets (paths on this machine), in the order they were made. */
  readonly cgroups: string[]
  /** Mount points this scene made on the machine (it lacked them), in the order they were made. */
  readonly mountPoints: string[]
}

/** The image archives in HYBRID_E2E_IMAGES; fails with a sentence saying what to put there. */
export async function imageArchives(dir: string | undefined, image: string): Promise<string[]> {
  const what =
    `image archives (docker save or OCI) that k3s imports on each worker: k3s's airgap images for its version, ` +
    `hybrid's flannel (${FLANNEL_IMAGE}, ${FLANNEL_CNI_PLUGIN_IMAGE}), and the workload image ${image} (HYBRID_E2E_IMAGE, default ${DEFAULT_IMAGE}, which ` +
    `no registry is guaranteed to serve here); the lab's workers have no route off this machine`
  if (!dir) assert.fail(`HYBRID_E2E_IMAGES is not set: set it to a directory of ${what}`)
  const names = await readdir(dir).catch(() => assert.fail(`HYBRID_E2E_IMAGES=${dir} is not a readable directory`))
  const archives = names.filter((name) => ARCHIVE.test(name)).map((name) => join(dir, name))
  if (archives.length === 0) assert.fail(`HYBRID_E2E_IMAGES=${dir} holds no .tar/.tar.zst/.tar.gz archive: put ${what}`)
  return archives
}

/** The version a k3s binary says it is ("k3s version v1.34.1+k3s1 (…)"), as the inventory names it. */
export async function k3sVersion(binary: string): Promise<string> {
  const result = await run(binary, ['--version'], {timeoutMs: 30_000})
  const version = /^k3s version (v\S+)/m.exec(result.stdout)?.[1]
  assert.ok(version, `${binary} --version names no k3s version: ${result.stdout}${result.stderr}`)
  return version
}

/**
 * A temp dir, a lab of three hosts and the inventory: the server's agent on (the sandbox Node), tunnel
 * mode, hybrid's flannel (`cni: flannel`, so k3s runs none, as in a sandbox that cannot run it, whatever
 * this machine's bridges can do), and k3s's packaged components the tests do not use left out (fewer
 * images, less load on a small machine).
 */
export async function makeWorkloadScene(binary: string): Promise<WorkloadScene> {
  const dir = await mkdtemp(join(tmpdir(), 'hybrid-e2e-workloads-'))
  let lab: Lab | undefined
  try {
    lab = await createLab({hosts: WORKERS.map((name) => ({name}))})
    const apiPort = await freePort()
    const inventory = await writeLabInventory(
      dir,
      lab,
      lab.hosts.map((host) => ({host})),
      {
        name: CLUSTER,
        k3s: {version: await k3sVersion(binary), binary},
        controlPlane: {
          agent: true,
          workarounds: 'auto',
          apiPort,
          extraArgs: ['--disable=traefik,metrics-server,local-storage'],
        },
        network: {cni: 'flannel'},
      },
    )
    const stateDir = join(dir, 'state')
    return {
      dir,
      name: CLUSTER,
      stateDir,
      dataDir: join(dir, 'data'),
      inventory,
      apiPort,
      env: fixtureEnv(dir, {HYBRID_READY_TIMEOUT_SECONDS: '420', HYBRID_NODE_READY_TIMEOUT_SECONDS: '420'}),
      pids: new Set(),
      lab,
      kubeconfig: join(stateDir, 'clusters', CLUSTER, 'kubeconfig'),
      cgroups: [],
      mountPoints: [],
    }
  } catch (error) {
    await lab?.destroy()
    await rm(dir, {recursive: true, force: true})
    throw error
  }
}

/** Make every worker a machine of its own for a real kubelet (see above), and give it the image archives. */
export async function prepareWorkers(scene: WorkloadScene, archives: readonly string[]): Promise<void> {
  const cgroupMounts = await machineCgroupMounts()
  const links = await cgroupLinks(cgroupMounts)
  const subnet = /^10\.213\.(\d+)\.0\/24$/.exec(scene.lab.subnet)?.[1]
  assert.ok(subnet, `the lab's subnet ${scene.lab.subnet} is not 10.213.K.0/24`)
  for (const dir of PRIVATE_DIRS.filter((d) => !existsSync(d))) {
    scene.mountPoints.push(dir)
    await mkdir(dir)
  }
  for (const host of scene.lab.hosts) {
    const root = `hybrid-e2e-${subnet}-${host.name}`
    for (const mount of cgroupMounts.filter((m) => m.fstype !== 'tmpfs')) {
      const path = join(mount.target, root)
      scene.cgroups.push(path)
      await mkdir(path)
    }
    await execIn(host, [
      ['ip', 'route', 'add', 'unreachable', '0.0.0.0/1'],
      ['ip', 'route', 'add', 'unreachable', '128.0.0.0/1'],
      ['ip', 'route', 'add', K3S_SERVICE_CIDR, 'dev', 'eth0'],
      ...PRIVATE_DIRS.map((d) => ['mount', '-t', 'tmpfs', '-o', 'mode=0755', 'hybrid-e2e', d]),
      ...cgroupMounts.flatMap((m) => [
        ['mkdir', '-p', m.target],
        ['mount', '-t', m.fstype, ...(m.options ? ['-o', m.options] : []), m.fstype, m.target],
      ]),
      ...links.map(([path, target]) => ['ln', '-s', target, path]),
    ])
    const dropIn = host.pathOnMachine(`${WORKER_PATHS.configDir}/config.yaml.d/50-lab-host.yaml`)
    await mkdir(join(dropIn, '..'), {recursive: true})
    await writeFile(
      dropIn,
      `# A lab host shares the kernel with the machine and the other hosts (test/e2e/workload-scene.ts).\n${JSON.stringify(
        {'kubelet-arg+': [`cgroup-root=/${root}`], 'kube-proxy-arg+': ['conntrack-max-per-core=0']},
        null,
        2,
      )}\n`,
    )
    const images = host.pathOnMachine(IMAGES_DIR)
    await mkdir(images, {recursive: true})
    for (const archive of archives) {
      const target = join(images, basename(archive))
      await link(archive, target).catch(() => copyFile(archive, target))
    }
  }
}

/**
 * Take the scene down: `down --uninstall-workers` while the lab is there, then whatever the fixture
 * recorded (supervisor, k3s) and its temp dir, then the lab, then the cgroups (empty once the lab's
 * processes are gone) and the mount points it made. Throws, naming them, if cgroups are left.
 */
export async function destroyScene(scene: WorkloadScene): Promise<void> {
  await recordPids(scene)
  await hybrid(scene, ['down', '--uninstall-workers', '--inventory', scene.inventory], {timeoutMs: 600_000}).catch(
    () => undefined,
  )
  await cleanupFixture(scene)
  await scene.lab.destroy()
  const left: string[] = []
  for (const path of [...scene.cgroups].reverse()) if (!(await removeCgroup(path))) left.push(path)
  for (const dir of [...scene.mountPoints].reverse()) await removeMountPoint(dir)
  assert.deepEqual(left, [], 'the workers’ cgroups are removed')
}

/** One pod of the workload as the tests look at it. */
export interface PodSeen {
  readonly name: string
  readonly node: string
  readonly ip: string
  readonly running: boolean
  readonly terminating: boolean
  /** Containers that wait, and why (ContainerCreating, ErrImagePull, …). */
  readonly waiting: Array<{reason: string; text: string}>
  /** Why it is not scheduled, if it is not. */
  readonly unschedulable?: string
}

const PULL_FAILURES = new Set(['ErrImagePull', 'ImagePullBackOff', 'ErrImageNeverPull', 'InvalidImageName'])

/** The pods `kubectl get pods SELECTOR…` lists (a label selector, or --all-namespaces). */
export async function pods(scene: WorkloadScene, selector: string[]): Promise<PodSeen[]> {
  const list = JSON.parse(await kubectl(scene, ['get', 'pods', ...selector, '-o', 'json'])) as {
    items: Array<{
      metadata: {name: string; namespace: string; deletionTimestamp?: string}
      spec: {nodeName?: string}
      status: {
        phase?: string
        podIP?: string
        conditions?: Array<{type: string; status: string; reason?: string; message?: string}>
        containerStatuses?: Array<{
          image: string
          ready: boolean
          state: {waiting?: {reason?: string; message?: string}}
        }>
      }
    }>
  }
  return list.items.map((p) => {
    const statuses = p.status.containerStatuses ?? []
    const scheduled = p.status.conditions?.find((c) => c.type === 'PodScheduled')
    return {
      name: p.metadata.name,
      node: p.spec.nodeName ?? '',
      ip: p.status.podIP ?? '',
      running: p.status.phase === 'Running' && statuses.length > 0 && statuses.every((c) => c.ready),
      terminating: p.metadata.deletionTimestamp !== undefined,
      waiting: statuses.flatMap(({image, state: {waiting}}) =>
        waiting
          ? [
              {
                reason: waiting.reason ?? '',
                text: `${p.metadata.namespace}/${p.metadata.name} ${image}: ${waiting.reason}`,
              },
            ]
          : [],
      ),
      ...(scheduled?.status === 'False' ? {unschedulable: scheduled.message ?? scheduled.reason ?? ''} : {}),
    }
  })
}

/** The image pulls that failed among `seen`: a worker has no route off the machine, so the archive was missing. */
export function pullFailures(seen: readonly PodSeen[]): string[] {
  return seen.flatMap((p) => p.waiting.filter((w) => PULL_FAILURES.has(w.reason)).map((w) => w.text))
}

/** After a failed `up`: the pulls that failed anywhere in the cluster, as a sentence ('' when none or no API). */
export async function pullFailuresAnywhere(scene: WorkloadScene): Promise<string> {
  const failed = await pods(scene, ['--all-namespaces']).then(pullFailures, () => [])
  return failed.length === 0
    ? ''
    : `\nimages that were not in HYBRID_E2E_IMAGES (the workers cannot pull): ${failed.join('; ')}`
}

/**
 * Poll `read` until `done` holds or `ms` pass; the last value either way, for the assertions to describe.
 * An error thrown by `read` (an image that cannot be pulled) ends the wait at once.
 */
export async function lastSeen<T>(read: () => Promise<T>, done: (value: T) => boolean, ms: number): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const value = await read()
    if (done(value) || Date.now() > end) return value
    await sleep(2000)
  }
}

/** The workload: agnhost's netexec (HTTP on 8080, /hostname answers the pod's name), one pod per Node. */
export function deployment(name: string, image: string, replicas: number): Record<string, unknown> {
  const labels = {app: name}
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {name, namespace: 'default', labels},
    spec: {
      replicas,
      selector: {matchLabels: labels},
      template: {
        metadata: {labels},
        spec: {
          // One per Node: a skew of 1 across the Nodes' hostnames. The sandbox Node is tainted, and the
          // default nodeTaintsPolicy (Ignore) would count it as an empty domain, so a fourth placement (after
          // a worker goes) would be refused; Honor leaves tainted and cordoned Nodes out.
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'DoNotSchedule',
              labelSelector: {matchLabels: labels},
              nodeTaintsPolicy: 'Honor',
            },
          ],
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'netexec',
              image,
              imagePullPolicy: 'IfNotPresent',
              args: ['netexec', '--http-port=8080'],
              ports: [{containerPort: 8080}],
              readinessProbe: {httpGet: {path: '/hostname', port: 8080}, periodSeconds: 2},
            },
          ],
        },
      },
    },
  }
}

/** Run `argv`s one after the other inside a lab host (set -e); throws with the host's name and stderr. */
async function execIn(host: LabHost, steps: string[][]): Promise<void> {
  const result = await host.exec(['sh', '-c', ['set -e', ...steps.map(commandLine)].join('\n')])
  if (result.code !== 0) throw new Error(`lab host ${host.name}: ${result.stderr.trim()}`)
}

interface CgroupMount {
  readonly target: string
  readonly fstype: 'tmpfs' | 'cgroup' | 'cgroup2'
  /** The superblock's options but rw/ro: the controllers of a v1 hierarchy (cpu,cpuacct; name=systemd). */
  readonly options: string
}

/** The machine's cgroup mounts under /sys/fs/cgroup, in mount order (a tmpfs first, on a v1 layout). */
async function machineCgroupMounts(): Promise<CgroupMount[]> {
  const mounts: CgroupMount[] = []
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const [before, after] = line.split(' - ')
    const target = before?.split(' ')[4]
    const [fstype, , superOptions] = (after ?? '').split(' ')
    if (!target || !(target === '/sys/fs/cgroup' || target.startsWith('/sys/fs/cgroup/'))) continue
    if (fstype !== 'tmpfs' && fstype !== 'cgroup' && fstype !== 'cgroup2') continue
    const options = superOptions
      .split(',')
      .filter((o) => o !== 'rw' && o !== 'ro')
      .join(',')
    mounts.push({target, fstype, options})
  }
  assert.ok(
    mounts.some((m) => m.fstype !== 'tmpfs'),
    'no cgroup hierarchy is mounted under /sys/fs/cgroup: a kubelet cannot run here',
  )
  return mounts
}

/** The symbolic links beside v1 hierarchies on a tmpfs (cpu -> cpu,cpuacct): [path, target]. */
async function cgroupLinks(mounts: readonly CgroupMount[]): Promise<Array<[string, string]>> {
  if (mounts[0]?.target !== '/sys/fs/cgroup' || mounts[0].fstype !== 'tmpfs') return []
  const links: Array<[string, string]> = []
  for (const name of await readdir('/sys/fs/cgroup')) {
    const path = join('/sys/fs/cgroup', name)
    if ((await lstat(path)).isSymbolicLink()) links.push([path, await readlink(path)])
  }
  return links
}

/**
 * Remove a mount point this scene made, unless a mount namespace still mounts something on it (another
 * lab's host) or something wrote into it (the sandbox's own kubelet uses /var/lib/kubelet).
 */
async function removeMountPoint(dir: string): Promise<void> {
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    const mounts = await readFile(`/proc/${pid}/mountinfo`, 'utf8').catch(() => '')
    if (mounts.split('\n').some((line) => line.split(' ')[4] === dir)) return
  }
  await rmdir(dir).catch(() => undefined)
}

/** Remove a cgroup and the ones its kubelet made below it, deepest first; false if some stay (busy). */
async function removeCgroup(path: string): Promise<boolean> {
  const remove = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, {withFileTypes: true}).catch(() => [])
    for (const entry of entries) if (entry.isDirectory()) await remove(join(dir, entry.name))
    await rmdir(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error
    })
  }
  // The lab's processes end with its hosts' PID namespaces; their cgroups empty a moment later.
  for (let attempt = 0; attempt < 30; attempt++) {
    try {
      await remove(path)
      return true
    } catch {
      await sleep(1000)
    }
  }
  return false
}
