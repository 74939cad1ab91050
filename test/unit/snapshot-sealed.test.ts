import {strict as assert} from 'node:assert'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import Database from 'better-sqlite3'

import {HybridError} from '../../src/errors.js'
import {buildArchive, installUnpacked, unpackArchive} from '../../src/snapshot/archive.js'
import {newSnapshotId} from '../../src/snapshot/remote-store.js'
import {seal, unseal} from '../../src/snapshot/sealed.js'
import {clusterPaths} from '../../src/state/cluster-state.js'

const about = {id: newSnapshotId(), cluster: 'lab', k3sVersion: 'v1.34.1+k3s1', createdAt: new Date().toISOString()}

async function refusal(work: Promise<unknown>): Promise<string> {
  try {
    await work
  } catch (error) {
    assert.ok(error instanceof HybridError, String(error))
    assert.equal(error.code, 'SNAPSHOT_REFUSED')
    assert.equal(error.exitCode, 1)
    assert.doesNotMatch(error.message, /\n/, 'one sentence')
    return error.message
  }
  assert.fail('the snapshot was not refused')
}

describe('snapshots: sealed with the cluster token, refused when they are not this cluster’s', () => {
  const archive = Buffer.from('an archive of the datastore, the CAs and the tokens'.repeat(50))

  it('opens with the same token and cluster, giving back the archive and the manifest', async () => {
    const {bytes, manifest} = await seal(archive, 'the-token', about)
    assert.equal(bytes.includes(Buffer.from('datastore')), false, 'nothing of the archive lies in the clear')
    const opened = await unseal(bytes, 'the-token', 'lab', 'w1:x')
    assert.deepEqual(opened.archive, archive)
    assert.deepEqual(opened.manifest, manifest)
    assert.equal(manifest.bytes, archive.byteLength)
  })

  it('refuses another token, another cluster, a changed byte, a changed manifest and a cut file', async () => {
    const {bytes} = await seal(archive, 'the-token', about)
    assert.match(
      await refusal(unseal(bytes, 'another-token', 'lab', 'w1:x')),
      /w1:x cannot be decrypted with this cluster's token/,
    )
    assert.match(
      await refusal(unseal(bytes, 'the-token', 'other', 'w1:x')),
      /w1:x is a snapshot of cluster lab, not of other/,
    )
    const flipped = Buffer.from(bytes)
    flipped[flipped.length - 40] ^= 1
    assert.match(await refusal(unseal(flipped, 'the-token', 'lab', 'w1:x')), /cannot be decrypted/)
    // the manifest is authenticated: a k3s version rewritten in the clear header fails like a changed byte
    const forged = Buffer.from(bytes.toString('latin1').replace('v1.34.1+k3s1', 'v1.99.1+k3s1'), 'latin1')
    assert.match(await refusal(unseal(forged, 'the-token', 'lab', 'w1:x')), /cannot be decrypted/)
    assert.match(await refusal(unseal(bytes.subarray(0, 30), 'the-token', 'lab', 'w1:x')), /not a hybrid snapshot/)
    assert.match(await refusal(unseal(Buffer.from('garbage'), 'the-token', 'lab', 'w1:x')), /not a hybrid snapshot/)
  })

  it('archives a WAL-mode datastore being written, with its last commit, and puts it back', async function () {
    this.timeout(20_000)
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-snapshot-test-'))
    try {
      const dataDir = join(dir, 'data')
      await mkdir(join(dataDir, 'server', 'db'), {recursive: true})
      await mkdir(join(dataDir, 'server', 'tls'), {recursive: true})
      await writeFile(join(dataDir, 'server', 'tls', 'server-ca.crt'), 'CA')
      await writeFile(join(dataDir, 'server', 'token'), 'K10abc::server:secret\n', {mode: 0o600})
      const db = new Database(join(dataDir, 'server', 'db', 'state.db'))
      db.pragma('journal_mode = WAL')
      db.exec('CREATE TABLE kine (id INTEGER PRIMARY KEY AUTOINCREMENT, name INTEGER, value BLOB)')
      const insert = db.prepare('INSERT INTO kine (name, value) VALUES (?, ?)')
      for (let i = 0; i < 500; i++) insert.run(`/registry/configmaps/default/c${i}`, 'x'.repeat(100))
      // the writer keeps its connection open: the rows are in the WAL, not yet in state.db
      process.env.HYBRID_STATE_DIR = join(dir, 'state')
      const paths = clusterPaths('lab')
      const tar = await buildArchive(dataDir, paths)
      db.close()
      const unpacked = await unpackArchive(tar)
      const into = join(dir, 'restored')
      await installUnpacked(unpacked, into, paths)
      await unpacked.remove()
      const copy = new Database(join(into, 'server', 'db', 'state.db'), {readonly: true})
      assert.deepEqual(copy.prepare('SELECT COUNT(*) AS n FROM kine').get(), {n: 500})
      copy.close()
      assert.equal(await readFile(join(into, 'server', 'token'), 'utf8'), 'K10abc::server:secret\n')
    } finally {
      delete process.env.HYBRID_STATE_DIR
      await rm(dir, {recursive: true, force: true})
    }
  })
})
