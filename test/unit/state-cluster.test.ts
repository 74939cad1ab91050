import {strict as assert} from 'node:assert'
import {mkdir, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {useTempStateDir} from '../helpers/state-dir.js'
import {HybridError} from '../../src/errors.js'
import {
  type ClusterState,
  clusterPaths,
  createState,
  forgetWorkaround,
  readState,
  recordWorkaround,
  removeRuntimeFiles,
  updateState,
  writeState,
} from '../../src/state/cluster-state.js'
import {currentCluster, resolveCluster, setCurrentCluster} from '../../src/state/current.js'
import {changedSettings} from '../../src/state/settings.js'

function freshState(cluster = 'lab'): ClusterState {
  return {
    version: 2,
    cluster,
    inventory: '/work/lab.yaml',
    settings: {name: cluster, controlPlane: {apiPort: 6443, workarounds: 'auto'}},
    dataDir: '/var/lib/hybrid/lab',
    apiPort: 6443,
    createdAt: new Date().toISOString(),
    workarounds: [],
    kubeconfig: clusterPaths(cluster).kubeconfig,
    supervisor: {pid: process.pid, startedAt: new Date().toISOString(), detached: false, argv: ['test']},
    phase: 'preparing',
  }
}

describe('cluster state', () => {
  const stateDir = useTempStateDir('hybrid-state-')

  it('keeps each cluster under clusters/<name>/state.json, 0600 in a 0700 directory', async () => {
    const written = freshState()
    await writeState(written)
    const paths = clusterPaths('lab')
    assert.equal(paths.state, join(stateDir(), 'clusters', 'lab', 'state.json'))
    assert.equal((await stat(paths.state)).mode & 0o777, 0o600)
    assert.equal((await stat(paths.dir)).mode & 0o777, 0o700)
    assert.deepEqual(await readState('lab'), written)
    assert.equal(await readState('other'), undefined, 'a cluster never brought up has no state')
    assert.deepEqual(await readdir(paths.dir), ['state.json'], 'no temp file is left beside it')
  })

  it('records applied workarounds in order, each at once, and forgets them one by one', async () => {
    await writeState(freshState())
    await recordWorkaround('lab', {id: 'procsys', details: {tree: '/x'}})
    assert.deepEqual(
      (await readState('lab'))!.workarounds.map((r) => r.id),
      ['procsys'],
      'written before the next one is applied',
    )
    await recordWorkaround('lab', {id: 'kmsg', details: {created: true}})
    await recordWorkaround('lab', {id: 'taint', details: {}})
    assert.deepEqual(
      (await readState('lab'))!.workarounds.map((r) => r.id),
      ['procsys', 'kmsg', 'taint'],
    )
    await forgetWorkaround('lab', 'kmsg')
    const state = (await readState('lab'))!
    assert.deepEqual(state.workarounds, [
      {id: 'procsys', details: {tree: '/x'}},
      {id: 'taint', details: {}},
    ])
  })

  it('updates by read-modify-write and refuses when the state is gone', async () => {
    await writeState(freshState())
    await updateState('lab', (s) => ({...s, phase: 'ready', k3s: {pid: 42, startedAt: 'now', restarts: 2}}))
    assert.equal((await readState('lab'))!.k3s?.restarts, 2)
    await removeRuntimeFiles('lab')
    await assert.rejects(
      updateState('lab', (s) => s),
      /has no state/,
    )
  })

  it('says in one sentence that a corrupt state file is corrupt', async () => {
    await mkdir(clusterPaths('lab').dir, {recursive: true})
    await writeFile(clusterPaths('lab').state, '{"version": 1, "clus')
    await assert.rejects(
      readState('lab'),
      (error: HybridError) =>
        error instanceof HybridError &&
        /state file .* is not valid JSON/.test(error.message) &&
        !error.message.includes('\n'),
    )
    await writeFile(clusterPaths('lab').state, JSON.stringify({...freshState(), version: 7}))
    await assert.rejects(readState('lab'), /not written by this version of hybrid/)
  })

  it('reads a version-1 state (written before workers joined) as version 2, and writes version 2', async () => {
    await mkdir(clusterPaths('lab').dir, {recursive: true})
    await writeFile(clusterPaths('lab').state, JSON.stringify({...freshState(), version: 1}))
    const read = await readState('lab')
    assert.equal(read?.version, 2)
    assert.equal(read?.sandboxAddress, undefined)
    await updateState('lab', (s) => s)
    assert.equal(JSON.parse(await readFile(clusterPaths('lab').state, 'utf8')).version, 2)
  })

  it('removes the runtime files but keeps the logs, and can do it twice', async () => {
    const paths = clusterPaths('lab')
    await writeState(freshState())
    await mkdir(join(paths.workDir, 'procsys', 'vm'), {recursive: true})
    for (const file of [
      paths.kubeconfig,
      paths.pidfile,
      paths.counters,
      paths.token,
      paths.k3sLog,
      paths.supervisorLog,
    ])
      await writeFile(file, 'x')
    await removeRuntimeFiles('lab')
    assert.deepEqual((await readdir(paths.dir)).sort(), ['k3s.log', 'supervisor.log'])
    await removeRuntimeFiles('lab')
    await rm(paths.k3sLog)
    await rm(paths.supervisorLog)
    await removeRuntimeFiles('lab')
    assert.deepEqual(await readdir(join(stateDir(), 'clusters')), [], 'an empty cluster directory goes too')
  })

  it('remembers the cluster up last brought up, which commands use without --inventory', async () => {
    assert.equal(await currentCluster(), undefined)
    await assert.rejects(
      resolveCluster(undefined),
      (error: HybridError) =>
        error.exitCode === 2 && /no cluster has been brought up here .*--inventory FILE/.test(error.message),
    )
    await setCurrentCluster('lab')
    assert.equal(await currentCluster(), 'lab')
    assert.equal((await stat(join(stateDir(), 'current'))).mode & 0o777, 0o600)
    assert.deepEqual(await resolveCluster(undefined), {cluster: 'lab'})
    assert.equal((await readFile(join(stateDir(), 'current'), 'utf8')).trim(), 'lab')
  })

  it('names the settings that differ, down to the leaf', () => {
    const before = {
      name: 'lab',
      controlPlane: {apiPort: 6443, extraArgs: [], workarounds: 'auto'},
      k3s: {version: 'v1'},
    }
    assert.deepEqual(changedSettings(before, structuredClone(before)), [])
    assert.deepEqual(
      changedSettings(before, {...before, controlPlane: {apiPort: 7443, extraArgs: ['--debug'], workarounds: 'auto'}}),
      ['controlPlane.apiPort', 'controlPlane.extraArgs'],
    )
    assert.deepEqual(changedSettings(before, {...before, k3s: {version: 'v2', binary: '/k3s'}}), [
      'k3s.version',
      'k3s.binary',
    ])
  })

  it("createState: of two ups of one cluster, the second is refused with the first one's pid, and the first one's state stays", async () => {
    const first = freshState('race')
    await createState(first)
    const second = {...freshState('race'), supervisor: {...first.supervisor!, pid: 424242}}
    await assert.rejects(createState(second), (error: unknown) => {
      assert.ok(error instanceof HybridError)
      assert.equal(
        error.message,
        `cluster race is being brought up by another hybrid (pid ${process.pid}) at this moment; \`hybrid status\` shows how it goes`,
      )
      return true
    })
    assert.equal((await readState('race'))?.supervisor?.pid, process.pid)
  })
})
