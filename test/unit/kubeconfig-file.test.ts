import {strict as assert} from 'node:assert'
import {mkdtemp, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {parse} from 'yaml'

import {HybridError} from '../../src/errors.js'
import {kubeConfigFromString} from '../../src/kube/client.js'
import {
  mergeIntoFile,
  mergeKubeconfig,
  mergeTarget,
  renameKubeconfig,
  userKubeconfig,
} from '../../src/kube/kubeconfig.js'

/** What k3s writes: everything named "default", server on 127.0.0.1. */
const K3S_KUBECONFIG = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EtREFUQQ==
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
`

describe('kubeconfig files', () => {
  it("makes the user's kubeconfig: everything named after the cluster, server on 127.0.0.1:<apiPort>", () => {
    const text = userKubeconfig(K3S_KUBECONFIG, 'lab', 'https://127.0.0.1:16443')
    const doc = parse(text)
    assert.equal(doc['current-context'], 'lab')
    assert.deepEqual(doc.contexts, [{name: 'lab', context: {cluster: 'lab', user: 'lab'}}])
    assert.deepEqual(doc.clusters, [
      {name: 'lab', cluster: {'certificate-authority-data': 'Q0EtREFUQQ==', server: 'https://127.0.0.1:16443'}},
    ])
    assert.equal(doc.users[0].name, 'lab')
    assert.equal(doc.users[0].user['client-key-data'], 'S0VZ')
    const kc = kubeConfigFromString(text)
    assert.equal(kc.getCurrentCluster()?.server, 'https://127.0.0.1:16443', '@kubernetes/client-node reads it')
  })

  it('renames context, cluster and user for --context', () => {
    const doc = parse(renameKubeconfig(userKubeconfig(K3S_KUBECONFIG, 'lab', 'https://127.0.0.1:6443'), 'lab-sandbox'))
    assert.equal(doc['current-context'], 'lab-sandbox')
    assert.equal(doc.clusters[0].name, 'lab-sandbox')
    assert.equal(doc.clusters[0].cluster.server, 'https://127.0.0.1:6443')
    assert.equal(doc.users[0].name, 'lab-sandbox')
  })

  it('merges: same names replaced, other entries kept, the added context current', () => {
    const existing = `apiVersion: v1
kind: Config
clusters:
- {name: prod, cluster: {server: https://prod.example:6443}}
- {name: lab, cluster: {server: https://old:1}}
users:
- {name: prod, user: {token: abc}}
contexts:
- {name: prod, context: {cluster: prod, user: prod, namespace: web}}
current-context: prod
preferences: {colors: true}
`
    const doc = parse(mergeKubeconfig(existing, userKubeconfig(K3S_KUBECONFIG, 'lab', 'https://127.0.0.1:6443')))
    assert.deepEqual(
      doc.clusters.map((c: {name: string}) => c.name),
      ['prod', 'lab'],
    )
    assert.equal(doc.clusters[1].cluster.server, 'https://127.0.0.1:6443')
    assert.deepEqual(doc.contexts[0], {name: 'prod', context: {cluster: 'prod', user: 'prod', namespace: 'web'}})
    assert.deepEqual(
      doc.users.map((u: {name: string}) => u.name),
      ['prod', 'lab'],
    )
    assert.equal(doc['current-context'], 'lab')
    assert.deepEqual(doc.preferences, {colors: true})
  })

  it('writes to the first KUBECONFIG entry, else ~/.kube/config', () => {
    assert.equal(mergeTarget({KUBECONFIG: '/a/config:/b/config'}), '/a/config')
    assert.match(mergeTarget({}), /\/\.kube\/config$/)
  })

  describe('merging into a file', () => {
    let dir: string
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'hybrid-kubeconfig-'))
    })
    afterEach(async () => {
      await rm(dir, {recursive: true, force: true})
    })

    it('creates it 0600 when missing, and merges again without duplicates', async () => {
      const target = join(dir, 'kube', 'config')
      const lab = userKubeconfig(K3S_KUBECONFIG, 'lab', 'https://127.0.0.1:6443')
      await mergeIntoFile(target, lab)
      await mergeIntoFile(target, lab)
      assert.equal((await stat(target)).mode & 0o777, 0o600)
      const doc = parse(await readFile(target, 'utf8'))
      assert.equal(doc.clusters.length, 1)
      assert.deepEqual(await readdir(join(dir, 'kube')), ['config'])
    })

    it('refuses a file that is not a kubeconfig, in one sentence, and leaves it as it was', async () => {
      const target = join(dir, 'config')
      await writeFile(target, '- just\n- a list\n')
      await assert.rejects(
        mergeIntoFile(target, userKubeconfig(K3S_KUBECONFIG, 'lab', 'https://127.0.0.1:6443')),
        (e: HybridError) =>
          e instanceof HybridError && e.message === `${target} is not a kubeconfig (not a YAML mapping)`,
      )
      assert.equal(await readFile(target, 'utf8'), '- just\n- a list\n')
    })
  })
})
