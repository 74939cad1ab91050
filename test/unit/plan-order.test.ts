import {strict as assert} from 'node:assert'

import {Plan} from '../../src/plan/index.js'
import type {ClusterContext, InventoryInput} from '../../src/phases/context.js'
import {loadState} from '../../src/phases/load-state.js'
import {makeCurrent} from '../../src/phases/make-current.js'
import {writeKubeconfig} from '../../src/phases/write-kubeconfig.js'

/**
 * The Plan builder's order check is a compile-time one: the `@ts-expect-error` below stops the build
 * (and so every test) the day a phase can be placed before what it reads.
 */
describe('Plan', () => {
  it('takes phases in order and compiles only when each reads what the base or an earlier phase gave', () => {
    const plan = Plan.start<ClusterContext & InventoryInput>().then(loadState).then(makeCurrent)
    assert.deepEqual(
      plan.phases.map((p) => p.title),
      [loadState.title, makeCurrent.title],
    )
    // @ts-expect-error write-kubeconfig reads `launch`, which no phase before it gives
    const wrong = Plan.start<ClusterContext & InventoryInput>().then(loadState).then(writeKubeconfig)
    assert.equal(wrong.phases.length, 2, 'at run time the builder only collects')
  })
})
