import {strict as assert} from 'node:assert'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createLab, type Lab, type LabHost, requireLab} from '../helpers/lab.js'
import {hostDigest, writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort, nodes, STANDIN} from '../system/cluster-fixture.js'
import {hybrid} from './scene.js'

/**
 * hybrid never takes over a k3s it did not install (docs/architecture.md, "Trust and failure model"): a
 * lab host with a k3s install and data of its own, and one whose agent another hybrid cluster installed,
 * are refused with a sentence naming what was found and how to adopt it, and keep every byte; the same
 * host joins once the inventory adopts it on purpose. A worker hybrid joins carries its mark.
 */

interface Scene {
  readonly dir: string
  readonly lab: Lab
  readonly env: NodeJS.ProcessEnv
  readonly kubeconfig: string
  inventory(adopt: boolean): Promise<string>
}

/** A k3s install of the host's own, as k3s's installer and a running agent would leave it. */
async function installOwnK3s(host: LabHost): Promise<void> {
  const program = `set -e
mkdir -p /usr/local/bin /etc/rancher/k3s /var/lib/rancher/k3s/agent/etc /var/lib/rancher/k3s/server
printf '#!/bin/sh\\necho "k3s version v1.30.4+k3s1 (98262b5d)"\\n' >/usr/local/bin/k3s
chmod 755 /usr/local/bin/k3s
printf 'server: https://10.0.0.1:6443\\ntoken-file: /etc/rancher/k3s/token\\n' >/etc/rancher/k3s/config.yaml
echo "K10aaaa::node:theirs" >/etc/rancher/k3s/token; chmod 600 /etc/rancher/k3s/token
head -c 65536 /dev/urandom >/var/lib/rancher/k3s/agent/etc/containerd-state.bin`
  const r = await host.exec(['sh', '-c', program])
  assert.equal(r.code, 0, r.stderr)
}

describe('a k3s that hybrid did not install (stand-in k3s, real lab sshd)', function () {
  this.timeout(600_000)
  let scene: Scene | undefined

  before(async function () {
    requireLab(this)
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-foreign-'))
    const lab = await createLab({hosts: [{name: 'w1'}, {name: 'theirs'}, {name: 'other'}]})
    await installOwnK3s(lab.host('theirs'))
    // An agent another hybrid cluster joined: its binary, config and mark.
    await installOwnK3s(lab.host('other'))
    const mark = await lab
      .host('other')
      .exec([
        'sh',
        '-c',
        'mkdir -p /var/lib/rancher/hybrid && printf "cluster=elsewhere\\nca=\\n" >/var/lib/rancher/hybrid/owner',
      ])
    assert.equal(mark.code, 0, mark.stderr)
    const apiPort = await freePort()
    scene = {
      dir,
      lab,
      env: fixtureEnv(dir, {HYBRID_NODE_READY_TIMEOUT_SECONDS: '60'}),
      kubeconfig: join(dir, 'state', 'clusters', 'ours', 'kubeconfig'),
      inventory: async (adopt) => {
        const file = await writeLabInventory(
          dir,
          lab,
          [{host: lab.host('w1')}, {host: lab.host('theirs')}, {host: lab.host('other')}],
          {
            name: 'ours',
            k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
            controlPlane: {agent: false, apiPort},
          },
        )
        if (!adopt) return file
        const document = JSON.parse(await readFile(file, 'utf8')) as {spec: {workers: Array<Record<string, unknown>>}}
        for (const worker of document.spec.workers) if (worker.name === 'theirs') worker.adopt = true
        await writeFile(file, JSON.stringify(document, null, 2))
        return file
      },
    }
  })

  after(async () => {
    if (!scene) return
    await hybrid(scene, ['down', '--uninstall-workers', '--inventory', await scene.inventory(false)]).catch(
      () => undefined,
    )
    await scene.lab.destroy()
    await rm(scene.dir, {recursive: true, force: true})
  })

  it('refuses both hosts, naming what it found and how to adopt it, and leaves them byte for byte as they were', async () => {
    const s = scene!
    const theirs = s.lab.host('theirs')
    const other = s.lab.host('other')
    const before = [await hostDigest(theirs), await hostDigest(other)]
    const up = await hybrid(s, ['up', '--inventory', await s.inventory(false), '--detach'])
    assert.equal(up.code, 3, `${up.stdout}\n${up.stderr}`)
    assert.match(
      up.stderr,
      /theirs: a k3s that hybrid did not install is there \(\/usr\/local\/bin\/k3s v1\.30\.4\+k3s1, \/var\/lib\/rancher\/k3s, \/etc\/rancher\/k3s\/config\.yaml\), and hybrid leaves it alone; .*set adopt: true on this worker/,
    )
    assert.match(
      up.stderr,
      /other: its k3s agent belongs to the hybrid cluster elsewhere \(\/var\/lib\/rancher\/hybrid\/owner\)/,
    )
    assert.deepEqual([await hostDigest(theirs), await hostDigest(other)], before, 'nothing changed on either host')
    const seen = await nodes(s)
    assert.equal(seen.get('w1')?.ready, true, 'w1 joined')
    assert.equal(seen.has('theirs') || seen.has('other'), false)
    const mark = await s.lab.host('w1').exec(['cat', '/var/lib/rancher/hybrid/owner'])
    assert.match(mark.stdout, /^cluster=ours$/m, 'the joined worker carries this cluster’s mark')
    assert.match(mark.stdout, /^ca=[0-9a-f]{64}$/m)
  })

  it('joins the host once the inventory adopts it, and a second up changes nothing there', async () => {
    const s = scene!
    const up = await hybrid(s, ['up', '--inventory', await s.inventory(true), '--detach'])
    assert.equal(up.code, 3, `${up.stdout}\n${up.stderr}`)
    assert.doesNotMatch(up.stderr, /theirs: a k3s that hybrid did not install/)
    assert.equal((await nodes(s)).get('theirs')?.ready, true, 'the adopted host joined')
    const again = await hybrid(s, ['up', '--inventory', await s.inventory(true), '--detach'])
    assert.equal(again.code, 3, again.stderr)
    assert.doesNotMatch(again.stderr, /theirs: (a k3s|its k3s)/, 'its own mark makes it this cluster’s from now on')
  })
})
