import assert from 'node:assert/strict'

import {WORKAROUND_IDS} from '../../src/inventory/schema.js'
import {selectWorkarounds, workaroundById, WORKAROUNDS} from '../../src/sandbox/workarounds/index.js'
import {type ProbeFinding, type WorkaroundContext, workaroundContext} from '../../src/sandbox/workarounds/workaround.js'

/** The order the design gives (the registry's, the schema's): applied in it, undone in reverse. */
const IDS = 'snapshotter cadvisor procsys kmsg flannel egress taint cgroups iptables cnibin'.split(' ')
const KUBELET_ONLY = ['snapshotter', 'cadvisor', 'procsys', 'kmsg', 'flannel', 'taint', 'cgroups']

const withAgent: WorkaroundContext = {
  dataDir: '/var/lib/hybrid/lab',
  agent: true,
  networkMode: 'tunnel',
  workDir: '/nonexistent/work',
}
const agentless: WorkaroundContext = {...withAgent, agent: false}

/** Findings as a probe run would give them: `found` for the ids named, not found for the rest. */
function findings(found: string[]): Map<string, ProbeFinding> {
  return new Map(IDS.map((id) => [id, {found: found.includes(id), evidence: 'fake'}]))
}
const ids = (list: {id: string}[]) => list.map((w) => w.id)

describe('workaround registry and selection (docs/architecture.md, "Workarounds")', () => {
  it('lists the ten workarounds in the design order, each with a blocker and a remedy', () => {
    assert.deepEqual(ids([...WORKAROUNDS]), IDS)
    assert.deepEqual([...WORKAROUND_IDS], IDS, 'the inventory schema lists the same ids in the same order')
    for (const w of WORKAROUNDS) {
      assert.ok(w.blocker.length > 10, `${w.id} has a blocker text`)
      assert.ok(w.remedy.length > 5, `${w.id} has a remedy text`)
      assert.equal(workaroundById(w.id), w)
    }
    assert.throws(() => workaroundById('overlay'), /unknown workaround "overlay"/)
  })

  it("builds the workarounds' view from settings; what an older state lacks takes the inventory default", () => {
    const where = {dataDir: '/var/lib/hybrid/lab', workDir: '/nonexistent/work'}
    assert.deepEqual(workaroundContext({controlPlane: {agent: false}, network: {mode: 'direct'}}, where), {
      ...where,
      agent: false,
      networkMode: 'direct',
    })
    assert.deepEqual(workaroundContext({}, where), withAgent)
  })

  it('auto applies exactly the found ones, in registry order, whatever order they were found in', () => {
    assert.deepEqual(ids(selectWorkarounds('auto', withAgent, findings(['kmsg', 'procsys', 'cnibin']))), [
      'procsys',
      'kmsg',
      'cnibin',
    ])
    assert.deepEqual(ids(selectWorkarounds('auto', withAgent, findings([]))), [])
  })

  it('auto leaves out what does not concern an agentless server, even when found', () => {
    assert.deepEqual(ids(selectWorkarounds('auto', agentless, findings(IDS))), ['egress', 'iptables', 'cnibin'])
  })

  it('all applies every one that concerns this control plane, found or not', () => {
    assert.deepEqual(ids(selectWorkarounds('all', withAgent, findings([]))), IDS)
    assert.deepEqual(ids(selectWorkarounds('all', agentless, findings([]))), ['egress', 'iptables', 'cnibin'])
  })

  it('none applies none, even when every blocker is found', () => {
    assert.deepEqual(selectWorkarounds('none', withAgent, findings(IDS)), [])
  })

  it('a list applies exactly those named, found or not, in registry order', () => {
    assert.deepEqual(ids(selectWorkarounds(['kmsg', 'snapshotter'], withAgent, findings(['procsys']))), [
      'snapshotter',
      'kmsg',
    ])
    assert.deepEqual(ids(selectWorkarounds(['kmsg'], agentless, findings([]))), ['kmsg'])
    assert.deepEqual(selectWorkarounds([], withAgent, findings(IDS)), [])
    assert.throws(
      () => selectWorkarounds(['kmsg', 'nope'] as never, withAgent, findings([])),
      /unknown workaround "nope"/,
    )
  })

  it('a finding missing for an id counts as not found under auto', () => {
    assert.deepEqual(ids(selectWorkarounds('auto', withAgent, new Map([['kmsg', {found: true, evidence: 'x'}]]))), [
      'kmsg',
    ])
  })

  it('agentless servers: exactly the kubelet workarounds (and flannel) stop applying', () => {
    for (const w of WORKAROUNDS) {
      assert.equal(w.appliesTo(withAgent), true, `${w.id} applies with an agent`)
      assert.equal(w.appliesTo(agentless), !KUBELET_ONLY.includes(w.id), `${w.id} agentless`)
    }
  })
})

describe("workarounds' k3s settings (config.yaml keys)", () => {
  const config = (id: string) => workaroundById(id).serverConfig(withAgent)

  it('match the remedies of docs/architecture.md, "Workarounds"', () => {
    assert.deepEqual(config('snapshotter'), {snapshotter: 'native'})
    assert.deepEqual(config('cadvisor'), {
      'kubelet-arg': [
        'local-storage-capacity-isolation=false',
        'image-gc-high-threshold=100',
        'image-gc-low-threshold=99',
      ],
    })
    assert.deepEqual(config('flannel'), {'flannel-backend': 'none'})
    assert.deepEqual(config('egress'), {'egress-selector-mode': 'cluster'})
    assert.deepEqual(config('taint'), {
      'node-taint': ['hybrid.dev/sandbox=true:NoSchedule'],
      'node-label': ['hybrid.dev/sandbox=true'],
    })
    assert.deepEqual(config('cgroups'), {'kubelet-arg': ['cgroups-per-qos=false', 'enforce-node-allocatable=']})
    for (const id of ['procsys', 'kmsg', 'cnibin'])
      assert.deepEqual(config(id), {}, `${id} changes the machine, not k3s's settings`)
  })

  it('taint never uses the control-plane taint that k3s system pods tolerate', () => {
    assert.doesNotMatch(JSON.stringify(config('taint')), /node-role\.kubernetes\.io/)
  })

  it('egress, taint: their probes follow the inventory, not the machine', async () => {
    const egress = workaroundById('egress')
    assert.equal((await egress.probe(withAgent)).found, true)
    assert.equal((await egress.probe(agentless)).found, true)
    assert.equal((await egress.probe({...withAgent, networkMode: 'direct'})).found, false)
    assert.equal((await egress.probe({...agentless, networkMode: 'direct'})).found, true)
    assert.equal((await workaroundById('taint').probe(withAgent)).found, true)
    assert.equal((await workaroundById('taint').probe(agentless)).found, false)
  })
})
