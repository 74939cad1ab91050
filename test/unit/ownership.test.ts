import {strict as assert} from 'node:assert'

import {caOfToken, type FoundK3s, foreignK3s, ownerFile, parseOwner} from '../../src/remote/ownership.js'

const CA = 'a'.repeat(64)
const none: FoundK3s = {binary: null, version: null, agent: false, traces: [], owner: null}
const ours = {owner: {cluster: 'lab', ca: CA}, recorded: false, adopt: false}

describe('whose k3s is on a worker', () => {
  it('a host without k3s is free; one with traces and no mark is refused, naming them and adopt', () => {
    assert.equal(foreignK3s('w1', none, ours), undefined)
    const found: FoundK3s = {
      ...none,
      binary: '/usr/local/bin/k3s',
      version: 'v1.30.4+k3s1',
      agent: true,
      traces: ['/var/lib/rancher/k3s'],
    }
    assert.equal(
      foreignK3s('w1', found, ours),
      'w1: a k3s that hybrid did not install is there (/usr/local/bin/k3s v1.30.4+k3s1, a k3s-agent service, /var/lib/rancher/k3s), and hybrid leaves it alone; uninstall it first (k3s-agent-uninstall.sh), or set adopt: true on this worker in the inventory to let hybrid take it over (and remove it on uninstall)',
    )
    assert.equal(foreignK3s('w1', found, {...ours, adopt: true}), undefined, 'adopted on purpose')
    assert.equal(foreignK3s('w1', found, {...ours, recorded: true}), undefined, 'joined by this cluster before marks')
  })

  it('a mark of this cluster is ours; of another cluster, or of another CA under our name, is refused', () => {
    const marked = (owner: FoundK3s['owner']): FoundK3s => ({...none, binary: '/usr/local/bin/k3s', owner})
    assert.equal(foreignK3s('w1', marked({cluster: 'lab', ca: CA}), ours), undefined)
    assert.equal(foreignK3s('w1', marked({cluster: 'lab', ca: null}), ours), undefined)
    assert.match(
      foreignK3s('w1', marked({cluster: 'prod', ca: CA}), ours) ?? '',
      /^w1: its k3s agent belongs to the hybrid cluster prod /,
    )
    assert.match(
      foreignK3s('w1', marked({cluster: 'lab', ca: 'b'.repeat(64)}), ours) ?? '',
      /^w1: its k3s agent belongs to another cluster named lab \(another CA\)/,
    )
    // The records do not make another cluster's mark ours.
    assert.ok(foreignK3s('w1', marked({cluster: 'prod', ca: null}), {...ours, recorded: true}))
  })

  it('the mark round-trips, and the CA comes from the join token', () => {
    assert.deepEqual(parseOwner(ownerFile({cluster: 'lab', ca: CA})), {cluster: 'lab', ca: CA})
    assert.deepEqual(parseOwner(ownerFile({cluster: 'lab', ca: null})), {cluster: 'lab', ca: null})
    assert.equal(parseOwner(''), null)
    assert.equal(caOfToken(`K10${CA}::server:secret`), CA)
    assert.equal(caOfToken('plainsecret'), null)
  })
})
