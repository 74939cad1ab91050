import {strict as assert} from 'node:assert'
import {execFileSync, spawnSync} from 'node:child_process'
import {appendFile, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {InventoryError} from '../../src/inventory/errors.js'
import {loadInventory} from '../../src/inventory/load.js'
import {SshConnections} from '../../src/remote/connections.js'
import {createLab, type Lab, requireLab} from '../helpers/lab.js'
import {requireTool} from '../helpers/requires.js'

/**
 * `ssh.config`: an OpenSSH client config file read for each worker's address (the `ssh-config` package),
 * on lab hosts with real sshd. A worker reached only through a two-hop ProxyJump chain (the bastion, then
 * a host behind it; the worker drops SSH from anywhere else); a passphrase key through the variable the
 * inventory names, and through a real ssh-agent.
 */
describe('ssh.config and passphrase keys (lab)', function () {
  this.timeout(180_000)
  let lab: Lab
  let dir: string

  before(async function () {
    requireLab(this)
    requireTool(this, 'iptables')
    requireTool(this, 'ssh-agent', 'openssh-client')
    dir = await mkdtemp(join(tmpdir(), 'hybrid-ssh-config-'))
    lab = await createLab({bastion: true, hosts: [{name: 'hop'}, {name: 'far'}]})
    // The far host answers SSH from the hop only.
    const far = lab.host('far')
    const hop = lab.host('hop')
    const rule = ['iptables', '-w', '-A', 'INPUT', '-p', 'tcp', '--dport', '22', '!', '-s', hop.address, '-j', 'DROP']
    const r = await far.exec(rule)
    assert.equal(r.code, 0, r.stderr)
  })
  after(async () => {
    await lab?.destroy()
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  async function inventory(name: string, workers: unknown[], ssh: Record<string, unknown> = {}): Promise<string> {
    const file = join(dir, `${name}.yaml`)
    const doc = {
      apiVersion: 'hybrid.dev/v1alpha1',
      kind: 'Cluster',
      metadata: {name},
      spec: {token: {env: 'HYBRID_TEST_TOKEN'}, ssh, workers},
    }
    await writeFile(file, JSON.stringify(doc, null, 2))
    return file
  }

  it('a worker behind a two-hop ProxyJump chain, reached through ssh.config alone', async () => {
    const config = join(dir, 'ssh_config')
    await writeFile(
      config,
      [
        'Host jump1',
        `  HostName ${lab.bastion!.address}`,
        'Host jump2',
        `  HostName ${lab.host('hop').address}`,
        'Host far-alias',
        `  HostName ${lab.host('far').address}`,
        '  ProxyJump jump1,jump2',
        'Host *',
        '  User root',
        `  IdentityFile ${lab.identityFile}`,
        `  UserKnownHostsFile ${lab.knownHosts}`,
        '  StrictHostKeyChecking yes',
        '',
      ].join('\n'),
    )
    const file = await inventory('chain', [{name: 'far', address: 'far-alias', ssh: {config}}])
    const [worker] = (await loadInventory(file)).workers
    assert.equal(worker.ssh.hostName, lab.host('far').address)
    assert.equal(worker.ssh.identityFile, lab.identityFile)
    assert.equal(worker.ssh.knownHosts, lab.knownHosts)
    assert.equal(worker.ssh.bastion?.address, lab.host('hop').address)
    assert.equal(worker.ssh.bastion?.via?.address, lab.bastion!.address)

    const connections = new SshConnections({})
    try {
      const host = await connections.host(worker)
      assert.equal((await host.check(['hostname'])).stdout.trim(), 'far')
    } finally {
      await connections.closeAll()
    }
    // Not a shortcut: straight from this machine the far host does not answer.
    const direct = spawnSync('ssh', [
      ...['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=3', '-i', lab.identityFile],
      ...['-o', `UserKnownHostsFile=${lab.knownHosts}`, `root@${lab.host('far').address}`, 'true'],
    ])
    assert.notEqual(direct.status, 0)

    // The inventory's own fields win: a port set there is dialled, whatever the config says.
    const explicit = await inventory('explicit', [{name: 'far', address: 'far-alias', ssh: {config, port: 2222}}])
    assert.equal((await loadInventory(explicit)).workers[0].ssh.port, 2222)
  })

  it('a value hybrid cannot use names the config file and line (exit 2)', async () => {
    const config = join(dir, 'bad_config')
    await writeFile(config, 'Host w\n  HostName 10.213.99.9\n  StrictHostKeyChecking maybe\n')
    const file = await inventory('bad', [{name: 'w', address: 'w', ssh: {config}}])
    await assert.rejects(loadInventory(file), (error: InventoryError) => {
      assert.equal(error.exitCode, 2)
      assert.match(
        error.message,
        new RegExp(`^${config}:3:1 spec\\.workers\\[0\\]\\.ssh\\.config: StrictHostKeyChecking maybe`),
      )
      return true
    })
  })

  describe('a key protected by a passphrase', () => {
    const PASSPHRASE = 'correct horse battery staple'
    let key: string
    let agent: {sock: string; pid: number} | undefined

    before(async () => {
      key = join(dir, 'id_protected')
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', PASSPHRASE, '-f', key])
      await appendFile(lab.bastion!.pathOnMachine('/etc/ssh/authorized_keys/root'), await readFile(`${key}.pub`))
    })
    after(() => {
      if (agent) process.kill(agent.pid)
    })

    const worker = async (name: string, ssh: Record<string, unknown>) => {
      const file = await inventory(name, [{name: 'b', address: lab.bastion!.address}], {
        identityFile: key,
        knownHosts: lab.knownHosts,
        ...ssh,
      })
      return (await loadInventory(file)).workers[0]
    }

    it('opens with the passphrase from the variable the inventory names, which leaves the environment', async () => {
      process.env.HYBRID_TEST_KEY_PASSPHRASE = PASSPHRASE
      const w = await worker('pass', {passphraseEnv: 'HYBRID_TEST_KEY_PASSPHRASE'})
      assert.equal(process.env.HYBRID_TEST_KEY_PASSPHRASE, undefined, 'taken out of the environment')
      const connections = new SshConnections()
      try {
        assert.equal((await (await connections.host(w)).check(['hostname'])).stdout.trim(), 'bastion')
      } finally {
        await connections.closeAll()
      }
      // Without it (and no agent) the sentence says how to supply it.
      await assert.rejects(
        new SshConnections({}).host(w),
        /does not open with the passphrase in ssh.passphraseEnv|is protected by a passphrase/,
      )
    })

    it('works through ssh-agent (ssh-add with the passphrase), and without it says how', async () => {
      const sock = join(dir, 'agent.sock')
      const out = execFileSync('ssh-agent', ['-a', sock, '-s'], {encoding: 'utf8'})
      agent = {sock, pid: Number(/SSH_AGENT_PID=(\d+)/.exec(out)![1])}
      const askpass = join(dir, 'askpass.sh')
      await writeFile(askpass, `#!/bin/sh\necho '${PASSPHRASE}'\n`, {mode: 0o700})
      execFileSync('ssh-add', [key], {
        env: {...process.env, SSH_AUTH_SOCK: sock, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0'},
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      const w = await worker('agent', {})
      const connections = new SshConnections({SSH_AUTH_SOCK: sock})
      try {
        assert.equal((await (await connections.host(w)).check(['hostname'])).stdout.trim(), 'bastion')
      } finally {
        await connections.closeAll()
      }
      await assert.rejects(new SshConnections({}).host(w), /is protected by a passphrase \(load it into ssh-agent/)
    })
  })
})
