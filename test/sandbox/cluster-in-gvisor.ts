import {strict as assert} from 'node:assert'
import {chmod, mkdir, readdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {type GvisorNetwork, type LabSandbox, runInGvisor} from '../helpers/gvisor.js'
import {type ClusterFixture, REPO, RUN_JS} from '../system/cluster-fixture.js'

/** What a scenario needs of its cluster: a fixture, or a scene of lab workers with the same fields. */
export type Scenario = Pick<ClusterFixture, 'dir' | 'name' | 'stateDir' | 'inventory' | 'env'>

/**
 * The control plane inside real gVisor (Debian's runsc, 9p root, host network so the API port is on the
 * host's loopback): the whole hybrid run happens in one sandbox, as a user's shell session would. The
 * script leaves its observations as files in the fixture's temp dir, which the 9p root shares.
 */
function script(fixture: Scenario, out: string, downArgs: readonly string[]): string {
  const node = JSON.stringify(process.execPath)
  const hybrid = `${node} ${JSON.stringify(RUN_JS)}`
  const kubeconfig = join(fixture.stateDir, 'clusters', fixture.name, 'kubeconfig')
  return `#!/bin/sh
out=${JSON.stringify(out)}
${hybrid} up --inventory ${JSON.stringify(fixture.inventory)} --detach >"$out/up.out" 2>"$out/up.err"; echo $? >"$out/up.code"
${hybrid} status --json >"$out/status.json" 2>"$out/status.err"
kubectl --kubeconfig ${JSON.stringify(kubeconfig)} get nodes -o json >"$out/nodes.json" 2>"$out/kubectl.err"
cat /proc/self/mountinfo >"$out/mounts-up.txt"
ip -o addr show lo >"$out/lo-up.txt" 2>&1
${hybrid} down ${downArgs.join(' ')} >"$out/down.out" 2>"$out/down.err"; echo $? >"$out/down.code"
cat /proc/self/mountinfo >"$out/mounts-down.txt"
ip -o addr show lo >"$out/lo-down.txt" 2>&1
for p in /proc/[0-9]*; do tr '\\0' ' ' <"$p/cmdline"; echo; done >"$out/ps.txt" 2>/dev/null
if [ -e /dev/kmsg ]; then echo present; else echo absent; fi >"$out/kmsg.txt"
`
}

export interface Observations {
  upCode: number
  upOut: string
  upErr: string
  downCode: number
  file(name: string): Promise<string>
}

export async function runScenario(
  fixture: Scenario,
  timeoutMs = 240_000,
  network: GvisorNetwork | LabSandbox = 'host',
  downArgs: readonly string[] = [],
): Promise<Observations> {
  const out = join(fixture.dir, 'out')
  const tmp = join(fixture.dir, 'tmp')
  await mkdir(out)
  await mkdir(tmp)
  // runsc with a network stack of its own starts the sandbox as another user, which must reach TMPDIR.
  await chmod(fixture.dir, 0o755)
  const file = join(fixture.dir, 'run.sh')
  await writeFile(file, script(fixture, out, downArgs), {mode: 0o755})
  // TMPDIR inside the fixture: "no temp files" is then checkable without racing other tests over /tmp.
  const result = await runInGvisor(['sh', file], {
    network,
    cwd: REPO,
    env: {...fixture.env, TMPDIR: tmp},
    timeoutMs,
  })
  assert.equal(result.code, 0, `runsc: ${result.stderr}`)
  const read = (name: string) => readFile(join(out, name), 'utf8').catch(() => '')
  return {
    upCode: Number(await read('up.code')),
    upOut: await read('up.out'),
    upErr: await read('up.err'),
    downCode: Number(await read('down.code')),
    file: read,
  }
}

/** Nothing of the fixture's left: no process naming its dir, no mount on /dev/kmsg, no temp file, no state. */
/**
 * `removedNodes`: the workers `down --uninstall-workers` took out without the API; their Nodes, which k3s's
 * datastore keeps, are listed for the next up to delete (removed-nodes.json), and nothing else stays.
 */
export async function assertNothingLeft(
  fixture: Scenario,
  seen: Observations,
  removedNodes: readonly string[] = [],
): Promise<void> {
  const processes = (await seen.file('ps.txt'))
    .split('\n')
    .filter((line) => line.includes(fixture.dir) && !line.includes('run.sh'))
  assert.deepEqual(processes, [], 'no process of the cluster is left in the sandbox')
  assert.doesNotMatch(await seen.file('mounts-down.txt'), / \/dev\/kmsg /, 'nothing is mounted on /dev/kmsg')
  assert.equal((await seen.file('kmsg.txt')).trim(), 'absent', '/dev/kmsg, created by the kmsg workaround, is gone')
  assert.deepEqual(await readdir(join(fixture.dir, 'tmp')), [], 'no temp files')
  const dir = join(fixture.stateDir, 'clusters', fixture.name)
  const clusterDir = await readdir(dir).catch(() => [] as string[])
  if (removedNodes.length > 0) {
    const listed = JSON.parse(await readFile(join(dir, 'removed-nodes.json'), 'utf8')) as {nodes: string[]}
    assert.deepEqual(
      [...listed.nodes].sort(),
      [...removedNodes].sort(),
      'the next up deletes the removed workers’ Nodes',
    )
  }
  assert.deepEqual(
    clusterDir.filter((f) => !f.endsWith('.log') && !(removedNodes.length > 0 && f === 'removed-nodes.json')),
    [],
    'no state but the logs',
  )
}
