import {strict as assert} from 'node:assert'

import {parseInventory} from '../../src/inventory/load.js'
import {diagnose, explainFailure} from '../../src/sandbox/diagnosis.js'
import {K3sFailure} from '../../src/sandbox/k3s-failure.js'
import {clusterPaths} from '../../src/state/cluster-state.js'

/** k3s's (and the stand-in's) logrus lines, as they end a failed start in gVisor. */
const PROCSYS =
  'time="2025-01-01T00:00:00Z" level=fatal msg="Failed to start ContainerManager" err="[open /proc/sys/vm/panic_on_oom: no such file or directory, open /proc/sys/kernel/panic: no such file or directory]"'
const KMSG =
  'time="2025-01-01T00:00:00Z" level=fatal msg="Failed to start OOM watcher" err="open /dev/kmsg: no such file or directory"'
const OVERLAY =
  'time="2025-01-01T00:00:00Z" level=fatal msg="failed to start containerd: \\"overlayfs\\" snapshotter cannot be enabled for \\"/d/agent/containerd\\", try using \\"fuse-overlayfs\\" or \\"native\\": failed to mount overlay: invalid argument"'

function inventory(workarounds: string) {
  return parseInventory(
    `apiVersion: hybrid.dev/v1alpha1\nkind: Cluster\nmetadata: {name: lab}\nspec:\n  token: {file: /t}\n  controlPlane: {dataDir: /d, workarounds: ${workarounds}}\n`,
    '/work/lab.yaml',
  )
}

function died(...logTail: string[]): K3sFailure {
  const sentence = 'k3s server exited with code 1 before becoming ready'
  return new K3sFailure({kind: 'died', sentence, exitCode: 1, signal: null, logTail})
}

/** explainFailure's view of an inventory: its setting, nothing applied yet, the cluster's k3s log. */
function setting(workarounds: string) {
  return {workarounds: inventory(workarounds).controlPlane.workarounds, applied: [], k3sLog: clusterPaths('lab').k3sLog}
}

describe('why k3s failed', () => {
  it("maps k3s's fatal messages to the workaround that removes the blocker", () => {
    const info = 'time="2025-01-01T00:00:00Z" level=info msg="Running kubelet --node-ip=10.0.0.1"'
    assert.deepEqual(diagnose([info, PROCSYS]), {
      workaround: 'procsys',
      message:
        'Failed to start ContainerManager: [open /proc/sys/vm/panic_on_oom: no such file or directory, open /proc/sys/kernel/panic: no such file or directory]',
    })
    assert.equal(diagnose([KMSG])?.workaround, 'kmsg')
    assert.equal(diagnose([OVERLAY])?.workaround, 'snapshotter')
    assert.match(diagnose([OVERLAY])!.message, /^failed to start containerd: "overlayfs" snapshotter cannot be enabled/)
    assert.equal(
      diagnose(['level=fatal msg="Failed to initialize nft: Protocol not supported"'])?.workaround,
      'iptables',
    )
    assert.equal(diagnose([info, 'time="x" level=fatal msg="no route"']), undefined)
  })

  it("says which workaround is missing and which inventory setting enables it, with k3s's words", () => {
    const paths = clusterPaths('lab')
    const none = explainFailure(died(PROCSYS), setting('none'))
    assert.equal(
      none.message,
      'k3s server exited with code 1 before becoming ready: Failed to start ContainerManager: [open /proc/sys/vm/panic_on_oom: no such file or directory, open /proc/sys/kernel/panic: no such file or directory]; the procsys workaround removes this blocker, but spec.controlPlane.workarounds is none (auto, all, or a list that includes procsys applies it)',
    )
    assert.equal(none.exitCode, 1)
    assert.equal(none.code, 'K3S_START_FAILED')
    assert.deepEqual(none.details, [PROCSYS, `(k3s's log: ${paths.k3sLog})`])
    assert.match(
      explainFailure(died(KMSG), setting('[procsys]')).message,
      /the kmsg workaround removes this blocker, but spec.controlPlane.workarounds does not list it \(add kmsg\)$/,
    )
    assert.match(explainFailure(died(KMSG), setting('auto')).message, /its probe did not find it here/)
  })

  it("keeps the supervisor's sentence when the blocker is unknown", () => {
    const gaveUp = new K3sFailure({
      ...died('level=fatal msg="something else"').toData(),
      kind: 'gave-up',
      sentence: 'k3s server died 6 times within 10 minutes',
    })
    const error = explainFailure(gaveUp, setting('auto'))
    assert.equal(error.code, 'K3S_DIED')
    assert.equal(error.message, 'k3s server died 6 times within 10 minutes')
    assert.equal(error.details[0], 'level=fatal msg="something else"')
  })
})
