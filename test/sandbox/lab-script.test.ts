import {strict as assert} from 'node:assert'
import {execFile, execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {promisify} from 'node:util'

import {requireGvisor} from '../helpers/gvisor.js'
import {requireTool} from '../helpers/requires.js'
import {REPO, RUN_JS} from '../system/cluster-fixture.js'

const run = promisify(execFile)

/** The sandbox's address: the test's own lab range; the host side of runsc's veth gets the next one. */
const LAB_ADDRESS = '10.215.0.2'

/**
 * The README's first command as a newcomer meets it: scripts/lab/sandbox.sh in a real terminal (a tmux
 * pane on a private tmux server), looked at from the host while it runs, then one Ctrl-C typed into
 * that terminal. Everything it makes lives under one temp dir; the tmux server is the test's own socket.
 */
describe('scripts/lab/sandbox.sh in a terminal', function () {
  this.timeout(400_000)
  let dir: string
  let socket: string
  const env = (): NodeJS.ProcessEnv => ({...process.env, HYBRID_STATE_DIR: join(dir, 'state')})
  const tmux = (...args: string[]) => execFileSync('tmux', ['-S', socket, ...args], {encoding: 'utf8'})
  const screen = () => tmux('capture-pane', '-p', '-J', '-S', '-500', '-t', 'lab')
  const hybrid = (...args: string[]) => run(process.execPath, [RUN_JS, ...args], {env: env(), cwd: dir})

  before(function () {
    requireGvisor(this)
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
      for (let i = 0; i < 60 && !existsSync(join(dir, 'exit')); i++) await sleep(1000)
    }
    try {
      tmux('kill-server')
    } catch {
      // never started
    }
    await rm(dir, {recursive: true, force: true})
  })

  it('comes up Ready; the host sees it running and lists its node; one Ctrl-C takes it down, leaving nothing', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-sandbox-lab-'))
    socket = join(dir, 'tmux.sock')
    const launcher = join(dir, 'launch.sh')
    await writeFile(
      launcher,
      `echo $$ >${JSON.stringify(join(dir, 'script.pid'))}
export HYBRID_LAB_DIR=${JSON.stringify(join(dir, 'lab'))} HYBRID_STATE_DIR=${JSON.stringify(join(dir, 'state'))} HYBRID_LAB_ADDRESS=${LAB_ADDRESS}
cd ${JSON.stringify(REPO)}
exec scripts/lab/sandbox.sh
`,
    )
    // The pane runs the script as a terminal's shell would (its own foreground process group); its exit
    // status goes to a file, and the pane stays readable after it ended.
    tmux('new-session', '-d', '-s', 'lab', '-x', '200', '-y', '50', `bash ${launcher}; echo $? >${join(dir, 'exit')}`)
    tmux('set-option', '-t', 'lab', 'remain-on-exit', 'on')

    let seen = ''
    for (let i = 0; i < 300 && !/Ctrl-C stops it/.test(seen) && !existsSync(join(dir, 'exit')); i++) {
      await sleep(1000)
      seen = screen()
    }
    assert.match(seen, /Ctrl-C stops it/, `the lab came up:\n${seen}`)
    assert.match(seen, /sandbox-server\s+Ready/, 'kubectl in the sandbox lists the node, Ready')

    // From the host: another pid and network namespace that shares the sandbox's files.
    const status = await hybrid('status')
    assert.match(status.stdout, /^cluster sandbox is up \(ready\) in another pid namespace/, status.stdout)
    assert.doesNotMatch(status.stdout, /not running|hybrid down/, 'no talk of a dead cluster or of a down here')
    assert.match(status.stdout, /sandbox-server\s+Ready/, 'status lists the node, through the API')
    const statusJson = JSON.parse((await hybrid('status', '--json')).stdout) as {
      up: boolean
      elsewhere?: boolean
      api?: {server: string}
    }
    assert.equal(statusJson.up, true)
    assert.equal(statusJson.elsewhere, true)
    assert.equal(statusJson.api?.server, `https://${LAB_ADDRESS}:6443`)

    const kubeconfig = join(dir, 'host.kubeconfig')
    await writeFile(kubeconfig, (await hybrid('kubeconfig')).stdout, {mode: 0o600})
    const nodes = await run('kubectl', ['--kubeconfig', kubeconfig, 'get', 'nodes', '-o', 'json'], {env: env()})
    const {items} = JSON.parse(nodes.stdout) as {items: Array<{metadata: {name: string}}>}
    assert.deepEqual(
      items.map((n) => n.metadata.name),
      ['sandbox-server'],
      'kubectl on the host, with the TLS certificate verified, lists the node',
    )
    // A down from the host would act on pids and mounts that are not the sandbox's: refused, naming why.
    const down = await hybrid('down').then(
      () => assert.fail('down from the host must refuse'),
      (error: {code: number; stderr: string}) => error,
    )
    assert.equal(down.code, 1)
    assert.match(down.stderr, /^hybrid: cluster sandbox was brought up in another pid namespace/m)

    // One Ctrl-C, typed into the terminal: the terminal signals its foreground process group.
    tmux('send-keys', '-t', 'lab', 'C-c')
    for (let i = 0; i < 120 && !existsSync(join(dir, 'exit')); i++) await sleep(1000)
    const code = Number((await readFile(join(dir, 'exit'), 'utf8').catch(() => 'none')).trim())
    seen = screen()
    assert.ok(code === 0 || code === 130, `the script exits 0 or 130 after Ctrl-C, not ${code}:\n${seen}`)
    assert.match(seen, /cluster sandbox is down; its workarounds are undone/, seen)
    // down removes the state only once every recorded workaround is undone.
    const clusterFiles = await readdir(join(dir, 'state', 'clusters', 'sandbox')).catch(() => [] as string[])
    assert.deepEqual(
      clusterFiles.filter((f) => !f.endsWith('.log')),
      [],
      'no state, pidfile or kubeconfig left',
    )
    assert.equal(existsSync(join(dir, 'lab', 'kubeconfig')), false)

    // Nothing of the lab runs on (no process names its directory, the tmux server aside), and runsc's
    // network namespace, veth and NAT rule for the sandbox are gone.
    const server = Number(tmux('display-message', '-p', '-t', 'lab', '#{pid}').trim())
    const left: string[] = []
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === server || Number(entry) === process.pid) continue
      const argv = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
      if (argv.includes(dir)) left.push(`${entry}: ${argv.replaceAll('\0', ' ')}`)
    }
    assert.deepEqual(left, [], 'no process of the lab left')
    const addresses = (await run('ip', ['-4', '-o', 'addr'])).stdout
    assert.doesNotMatch(addresses, /10\.215\.0\.3\//, "runsc's veth for the sandbox is gone")
  })
})
