import {strict as assert} from 'node:assert'
import {execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {requireGvisor} from '../helpers/gvisor.js'
import {requireLab, runWorkers} from '../helpers/lab.js'
import {requireTool} from '../helpers/requires.js'
import {REPO} from '../system/cluster-fixture.js'

/**
 * The README's first command as a newcomer meets it: scripts/lab/cluster.sh in a real terminal (a tmux
 * pane on a private tmux server), then one Ctrl-C typed into that terminal. Its lab (three worker hosts
 * and the coordinator's namespace) is claimed on a subnet of its own and lives under one temp dir with
 * everything else it makes; the tmux server is the test's own socket.
 */
describe('scripts/lab/cluster.sh in a terminal', function () {
  this.timeout(600_000)
  let dir: string
  let socket: string
  const tmux = (...args: string[]) => execFileSync('tmux', ['-S', socket, ...args], {encoding: 'utf8'})
  const screen = () => tmux('capture-pane', '-p', '-J', '-S', '-2000', '-t', 'lab')

  before(function () {
    requireGvisor(this)
    requireLab(this)
    requireTool(this, 'tmux')
    requireTool(this, 'kubectl', 'kubernetes-client')
  })

  after(async () => {
    if (!socket) return
    // Still running (the test failed early): the same one SIGINT the terminal would send, then the server.
    const pid = Number(await readFile(join(dir, 'script.pid'), 'utf8').catch(() => '0'))
    if (pid && existsSync(join(dir, 'script.pid')) && !existsSync(join(dir, 'exit'))) {
      try {
        process.kill(pid, 'SIGINT')
      } catch {
        // gone
      }
      for (let i = 0; i < 90 && !existsSync(join(dir, 'exit')); i++) await sleep(1000)
    }
    try {
      tmux('kill-server')
    } catch {
      // never started
    }
    // Whatever the script did not take down, by the lab's own record.
    if (existsSync(join(dir, 'lab', 'state'))) await runWorkers(join(dir, 'lab'), ['down', '--purge'])
    await rm(dir, {recursive: true, force: true})
  })

  it('brings up the control plane in gVisor and three Ready workers, shows the nodes; one Ctrl-C uninstalls the workers, stops it and removes the lab', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-cluster-lab-'))
    socket = join(dir, 'tmux.sock')
    const lab = join(dir, 'lab')
    const launcher = join(dir, 'launch.sh')
    // The lab claims a subnet of its own (10.213.0.0/24 is the user's lab), owned by the script's process.
    await writeFile(
      launcher,
      `echo $$ >${JSON.stringify(join(dir, 'script.pid'))}
export HYBRID_LAB_DIR=${JSON.stringify(lab)} HYBRID_STATE_DIR=${JSON.stringify(join(dir, 'state'))}
cd ${JSON.stringify(REPO)}
scripts/lab/workers.sh claim $$ >/dev/null || exit 1
exec scripts/lab/cluster.sh
`,
    )
    // The pane runs the script as a terminal's shell would (its own foreground process group); its exit
    // status goes to a file, and the pane stays readable after it ended.
    tmux('new-session', '-d', '-s', 'lab', '-x', '220', '-y', '50', `bash ${launcher}; echo $? >${join(dir, 'exit')}`)
    tmux('set-option', '-t', 'lab', 'remain-on-exit', 'on')

    let seen = ''
    for (let i = 0; i < 420 && !/Ctrl-C stops it/.test(seen) && !existsSync(join(dir, 'exit')); i++) {
      await sleep(1000)
      seen = screen()
    }
    assert.match(seen, /Ctrl-C stops it/, `the lab came up:\n${seen}`)
    assert.match(seen, /uses the k3s STAND-IN/, 'the script says it uses the stand-in')
    assert.match(seen, /k3s version v1\.34\.1\+k3s1 \(stand-in\)/, "up's summary names the k3s that ran")
    const listed = seen.slice(seen.lastIndexOf('$ kubectl get nodes'))
    for (const node of ['lab-server', 'w1', 'w2', 'w3'])
      assert.match(listed, new RegExp(`^${node}\\s+Ready\\s`, 'm'), `kubectl in the sandbox lists ${node} Ready`)

    // One Ctrl-C, typed into the terminal: the terminal signals its foreground process group.
    tmux('send-keys', '-t', 'lab', 'C-c')
    for (let i = 0; i < 180 && !existsSync(join(dir, 'exit')); i++) await sleep(1000)
    const code = Number((await readFile(join(dir, 'exit'), 'utf8').catch(() => 'none')).trim())
    seen = screen()
    assert.ok(code === 0 || code === 130, `the script exits 0 or 130 after Ctrl-C, not ${code}:\n${seen}`)
    assert.match(seen, /\$ hybrid down --uninstall-workers/, seen)
    assert.match(seen, /cluster lab is down; its workarounds are undone/, seen)
    const clusterDir = join(dir, 'state', 'clusters', 'lab')
    const clusterFiles = await readdir(clusterDir).catch(() => [] as string[])
    // What stays is the list of the uninstalled workers' Nodes, which k3s's datastore keeps and the next
    // up deletes before anything joins (down had no API to delete them): exactly w1, w2 and w3.
    const removed = JSON.parse(await readFile(join(clusterDir, 'removed-nodes.json'), 'utf8')) as {nodes: string[]}
    assert.deepEqual([...removed.nodes].sort(), ['w1', 'w2', 'w3'], 'the next up deletes the three Nodes')
    assert.deepEqual(
      clusterFiles.filter((f) => !f.endsWith('.log') && f !== 'removed-nodes.json'),
      [],
      'no state, worker record, pidfile or kubeconfig left',
    )
    assert.equal(existsSync(join(lab, 'kubeconfig')), false)
    // The lab is taken down by its own record: none is left, and its subnet's claim is given back.
    assert.equal(existsSync(join(lab, 'state')), false, 'every lab resource the script recorded is removed')
    assert.equal(existsSync(join(lab, 'lab.env')), false, "the lab's subnet is given back")

    // Nothing of the lab runs on (no process names its directory, the tmux server aside).
    const server = Number(tmux('display-message', '-p', '-t', 'lab', '#{pid}').trim())
    const left: string[] = []
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === server || Number(entry) === process.pid) continue
      const argv = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
      if (argv.includes(dir)) left.push(`${entry}: ${argv.replaceAll('\0', ' ')}`)
    }
    assert.deepEqual(left, [], 'no process of the lab left')
  })
})
