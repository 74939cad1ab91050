import {strict as assert} from 'node:assert'
import {copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {createLab, type Lab, type LabHost, requireLab} from '../helpers/lab.js'
import {requireTool} from '../helpers/requires.js'
import {ADVERTISED} from '../helpers/worker-leftovers.js'
import {writeLabInventory} from '../remote/lab-workers.js'
import {fixtureEnv, freePort, STANDIN} from '../system/cluster-fixture.js'
import {hybrid} from './scene.js'

/**
 * `hybrid kubeconfig --via WORKER`: a kubeconfig for a machine outside the sandbox, and the one `ssh -L`
 * line that makes it work. The "laptop" is another lab host (a network namespace of its own, not in the
 * inventory) that can reach the worker's sshd: there OpenSSH's own `ssh` runs the printed line (with the
 * laptop's key and known_hosts added, as a user's ~/.ssh would give them) and kubectl reads the Nodes
 * through it, verifying the API's certificate (the k3s stand-in issues it with k3s's SANs).
 */

const CLUSTER = 'via'
const LOCAL_PORT = 16443

interface Scene {
  readonly dir: string
  readonly lab: Lab
  readonly inventory: string
  readonly env: NodeJS.ProcessEnv
}

/** Run the printed ssh line on `laptop` with its own key, then kubectl with `kubeconfig` (a path there) through it. */
async function kubectlThroughForward(laptop: LabHost, sshLine: string, kubeconfig: string) {
  const program = `
    set -u
    read -r line
    eval "words=($line)"
    "\${words[0]}" -i /root/.ssh/id_ed25519 -o UserKnownHostsFile=/root/.ssh/known_hosts -o StrictHostKeyChecking=yes \\
      -o BatchMode=yes -o ExitOnForwardFailure=yes "\${words[@]:1}" 2>/root/ssh.err &
    ssh=$!
    for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/${LOCAL_PORT}) 2>/dev/null && break; sleep 0.1; done
    kubectl --kubeconfig "$1" --request-timeout=20s get nodes -o name; code=$?
    kill $ssh; wait $ssh 2>/dev/null
    cat /root/ssh.err >&2
    exit $code`
  return laptop.exec(['bash', '-c', program, 'bash', kubeconfig], {input: `${sshLine}\n`})
}

describe('kubeconfig --via: the API from outside the sandbox through ssh -L (stand-in k3s, real lab sshd)', function () {
  this.timeout(600_000)
  let scene: Scene | undefined

  before(async function () {
    requireLab(this)
    requireTool(this, 'kubectl')
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-kubeconfig-via-'))
    const lab = await createLab({hosts: [{name: 'w1'}, {name: 'laptop'}]})
    const inventory = await writeLabInventory(dir, lab, [{host: lab.host('w1')}], {
      name: CLUSTER,
      k3s: {version: 'v1.34.1+k3s1', binary: STANDIN},
      controlPlane: {agent: false, apiPort: await freePort()},
    })
    scene = {dir, lab, inventory, env: fixtureEnv(dir, {HYBRID_NODE_READY_TIMEOUT_SECONDS: '60'})}
    // The laptop's own ~/.ssh: a key w1 accepts (the lab's) and w1's host key.
    const laptop = lab.host('laptop')
    await mkdir(laptop.pathOnMachine('/root/.ssh'), {recursive: true, mode: 0o700})
    await copyFile(lab.identityFile, laptop.pathOnMachine('/root/.ssh/id_ed25519'))
    await copyFile(lab.knownHosts, laptop.pathOnMachine('/root/.ssh/known_hosts'))
  })

  after(async () => {
    if (!scene) return
    await hybrid(scene, ['down', '--uninstall-workers', '--inventory', scene.inventory]).catch(() => undefined)
    await scene.lab.destroy()
    await rm(scene.dir, {recursive: true, force: true})
  })

  it('prints one ssh -L line; through it, kubectl on another host lists the Nodes with the certificate verified', async () => {
    const s = scene!
    const up = await hybrid(s, ['up', '--inventory', s.inventory, '--detach'])
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`)

    const output = join(s.dir, 'laptop.kubeconfig')
    const args = ['kubeconfig', '--inventory', s.inventory, '--via', 'w1', '--local-port', String(LOCAL_PORT)]
    const result = await hybrid(s, [...args, '--output', output])
    assert.equal(result.code, 0, result.stderr)
    const w1 = s.lab.host('w1')
    const apiPort = Number(/"apiPort":\s*(\d+)/.exec(await readFile(s.inventory, 'utf8'))![1])
    assert.equal(result.stdout, `ssh -N -L ${LOCAL_PORT}:${ADVERTISED}:${apiPort} root@${w1.address}\n`)
    assert.match(result.stderr, new RegExp(`wrote ${output} \\(0600; server https://127\\.0\\.0\\.1:${LOCAL_PORT}`))

    // The file: 0600, the forwarded port, a name of the certificate, nothing that skips verification.
    assert.equal((await stat(output)).mode & 0o777, 0o600)
    const text = await readFile(output, 'utf8')
    assert.match(text, new RegExp(`server: https://127\\.0\\.0\\.1:${LOCAL_PORT}\\n`))
    assert.match(text, /tls-server-name: localhost\n/)
    assert.match(text, /certificate-authority-data: /)
    assert.doesNotMatch(text, /insecure-skip-tls-verify/)
    const key = /client-key-data: (\S+)/.exec(text)![1]
    assert.ok(!result.stdout.includes(key) && !result.stderr.includes(key), 'the key is not printed')

    const laptop = s.lab.host('laptop')
    await writeFile(laptop.pathOnMachine('/root/via.kubeconfig'), text, {mode: 0o600})
    const seen = await kubectlThroughForward(laptop, result.stdout.trim(), '/root/via.kubeconfig')
    assert.equal(seen.code, 0, `${seen.stdout}\n${seen.stderr}`)
    assert.match(seen.stdout, /^node\/w1$/m)

    // The certificate really is checked: a name it does not carry fails the same way in.
    const wrongName = text.replace('tls-server-name: localhost', 'tls-server-name: not-in-the-certificate')
    await writeFile(laptop.pathOnMachine('/root/wrong.kubeconfig'), wrongName, {mode: 0o600})
    const refused = await kubectlThroughForward(laptop, result.stdout.trim(), '/root/wrong.kubeconfig')
    assert.notEqual(refused.code, 0)
    assert.match(refused.stderr, /x509: certificate is valid for .*not not-in-the-certificate/)
  })

  it('an unknown worker is one sentence naming the joined ones (exit 2)', async () => {
    const s = scene!
    const result = await hybrid(s, ['kubeconfig', '--inventory', s.inventory, '--via', 'w9'])
    assert.equal(result.code, 2)
    assert.match(result.stderr, /cluster via has no joined worker named w9 \(joined: w1\)/)
  })
})
