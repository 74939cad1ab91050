import {strict as assert} from 'node:assert'
import {readdir, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {removeRuntimeFiles} from '../../src/state/cluster-state.js'
import {forgetRemovedNodes, readRemovedNodes, recordRemovedNode} from '../../src/state/removed-nodes.js'
import {useTempStateDir} from '../helpers/state-dir.js'

/** The Nodes `down --uninstall-workers` leaves for the next `up` to delete (src/state/removed-nodes.ts). */
describe('removed workers’ Nodes in the state', () => {
  const stateDir = useTempStateDir('hybrid-removed-nodes-')
  const clusterDir = () => join(stateDir(), 'clusters', 'lab')

  it('notes each Node once, from workers leaving at the same time, in a 0600 file that outlives down’s clean-up', async () => {
    const names = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6']
    await Promise.all([...names, ...names].map((n) => recordRemovedNode('lab', n)))
    assert.deepEqual((await readRemovedNodes('lab')).sort(), names)
    assert.equal((await stat(join(clusterDir(), 'removed-nodes.json'))).mode & 0o777, 0o600)
    await removeRuntimeFiles('lab') // what `down` does once the cluster is gone
    assert.deepEqual((await readRemovedNodes('lab')).sort(), names)
  })

  it('forgets the Nodes deleted, and the file with the last', async () => {
    await recordRemovedNode('lab', 'w1')
    await recordRemovedNode('lab', 'w2')
    await forgetRemovedNodes('lab', ['w1'])
    assert.deepEqual(await readRemovedNodes('lab'), ['w2'])
    await forgetRemovedNodes('lab', ['w2'])
    assert.deepEqual(await readRemovedNodes('lab'), [])
    assert.deepEqual(await readdir(clusterDir()), [])
  })
})
