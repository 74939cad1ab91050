import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {spawn} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {connect} from 'node:net'

import {
  createLab,
  type Lab,
  labLeftovers,
  labRecords,
  requireLab,
  runCommand,
  runWorkers,
  ticksNow,
  type ExecResult,
} from '../helpers/lab.js'
import {requireTool} from '../helpers/requires.js'

/**
 * The lab itself (scripts/lab/workers.sh through test/helpers/lab.ts): what every SSH test stands on.
 * Hosts have their own addresses and directories, their sshd answers with the recorded host key to the
 * real OpenSSH client, each spec option really produces its fault, and nothing is left behind.
 */

/** The real `ssh` client with the lab key and strict host-key checking against `knownHosts`. */
function ssh(
  lab: Lab,
  target: string,
  command: string,
  options: {user?: string; extra?: string[]; input?: string} = {},
) {
  const args = [
    '-F',
    '/dev/null',
    '-i',
    lab.identityFile,
    '-o',
    `UserKnownHostsFile=${lab.knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=10',
    ...(options.extra ?? []),
    `${options.user ?? 'root'}@${target}`,
    command,
  ]
  return runCommand('ssh', args, options.input)
}

const PRIVATE_DIRS = [
  '/etc/rancher',
  '/var/lib/rancher',
  '/usr/local/bin',
  '/run',
  '/etc/ssh',
  '/etc/systemd/system',
  '/var/lib',
]

function ok(result: ExecResult, what: string): string {
  assert.equal(result.code, 0, `${what} failed (${result.code}): ${result.stderr}`)
  return result.stdout
}

describe('lab worker hosts (scripts/lab/workers.sh)', function () {
  this.timeout(180_000)

  describe('a lab of five hosts, one of each kind', () => {
    let lab: Lab | undefined
    const password = `pw ${randomBytes(4).toString('hex')} 'quoted'`

    before(async function () {
      requireLab(this)
      requireTool(this, 'ssh', 'openssh-client')
      requireTool(this, 'sudo')
      lab = await createLab({
        hosts: [
          {name: 'w1', users: [{name: 'deploy', password, sudoers: 'ALL=(ALL) ALL'}]},
          {name: 'w2', sshd: ['GatewayPorts no']},
          {name: 'refuses', acceptLabKey: false},
          {name: 'silent', listening: false},
          {name: 'down', reachable: false},
        ],
      })
    })
    after(async () => {
      await lab?.destroy()
    })

    it('each host has its own address in the lab subnet, its own hostname, and answers on port 22', async () => {
      const net = lab!.subnet.replace(/\.0\/24$/, '')
      const addresses = lab!.hosts.map((h) => h.address)
      assert.deepEqual(
        addresses,
        [11, 12, 13, 14, 15].map((i) => `${net}.${i}`),
      )
      for (const host of lab!.hosts) {
        const eth0 = ok(await host.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']), `ip on ${host.name}`)
        assert.match(eth0, new RegExp(` ${host.address.replaceAll('.', '\\.')}/24 `))
        assert.equal(ok(await host.exec(['hostname']), 'hostname').trim(), host.name)
      }
      // PID 1 is the lab's init, not an init system: a host has none.
      assert.equal(ok(await lab!.host('w1').exec(['cat', '/proc/1/comm']), 'comm').trim(), 'bash')
    })

    it('private directories are private: a file in one host is in neither another host nor the machine', async () => {
      const [w1, w2] = lab!.hosts
      for (const dir of PRIVATE_DIRS) {
        const file = `${dir}/lab-probe-${randomBytes(4).toString('hex')}`
        ok(await w1.exec(['sh', '-c', 'echo "$1" > "$2"', 'sh', 'from w1', file]), `write ${file}`)
        assert.equal(readFileSync(w1.pathOnMachine(file), 'utf8'), 'from w1\n', `${file} is where pathOnMachine says`)
        assert.equal((await w2.exec(['test', '-e', file])).code, 1, `${file} must not be in w2`)
        assert.equal(existsSync(file), false, `${file} must not be on the machine`)
        ok(await w1.exec(['rm', file]), `rm ${file}`)
      }
      assert.equal(w1.pathOnMachine('/usr/bin/env'), '/usr/bin/env', 'other paths are the machine’s own')
      // A kubelet's and the CNI's directories are the host's own and no mount points: an uninstall removes them.
      ok(
        await w1.exec([
          'sh',
          '-c',
          'mkdir -p /var/lib/kubelet/pods /var/lib/cni && rm -r /var/lib/kubelet /var/lib/cni',
        ]),
        'make and remove /var/lib/kubelet',
      )
      assert.equal(existsSync('/var/lib/kubelet'), false, '/var/lib/kubelet must not be on the machine')
    })

    it('sshd answers the real ssh client with the recorded host key (StrictHostKeyChecking=yes)', async () => {
      const knownHosts = readFileSync(lab!.knownHosts, 'utf8')
      for (const name of ['w1', 'w2']) {
        const host = lab!.host(name)
        assert.ok(knownHosts.includes(`${host.address} ${host.hostKey}\n`), `known_hosts names ${name}'s key`)
        assert.equal(ok(await ssh(lab!, host.address, 'hostname'), `ssh ${name}`).trim(), name)
      }
      assert.match(await lab!.host('w1').sshdLog(), /Accepted publickey for root from /)
    })

    it('the spec options make their faults: sshd lines, a refused key, nothing listening, a host that is down', async () => {
      const w2 = lab!.host('w2')
      assert.match(
        ok(await w2.exec(['sshd', '-T', '-C', 'user=root,addr=10.213.0.1,host=x,laddr=x,lport=22']), 'sshd -T'),
        /^gatewayports no$/m,
      )
      const refused = await ssh(lab!, lab!.host('refuses').address, 'true')
      assert.equal(refused.code, 255)
      assert.match(refused.stderr, /Permission denied \(publickey\)/)
      const silent = await ssh(lab!, lab!.host('silent').address, 'true')
      assert.match(silent.stderr, /Connection refused/)
      const down = lab!.host('down')
      const started = Date.now()
      const unreachable = await ssh(lab!, down.address, 'true', {extra: ['-o', 'ConnectTimeout=2']})
      assert.match(unreachable.stderr, /No route to host|timed out/)
      assert.ok(Date.now() - started >= 1500, 'nothing answers: the client waits, it is not refused at once')
      assert.equal(ok(await down.exec(['hostname']), 'exec in a host that is down').trim(), 'down')
    })

    it('a lab user logs in with the lab key and sudo takes its password on stdin, and only that password', async () => {
      const w1 = lab!.host('w1').address
      assert.equal(ok(await ssh(lab!, w1, 'id -un', {user: 'deploy'}), 'ssh deploy').trim(), 'deploy')
      const noPassword = await ssh(lab!, w1, 'sudo -n true', {user: 'deploy'})
      assert.match(noPassword.stderr, /a password is required/)
      const good = await ssh(lab!, w1, "sudo -S -p '' id -u", {user: 'deploy', input: `${password}\n`})
      assert.equal(ok(good, 'sudo with the password').trim(), '0')
      const bad = await ssh(lab!, w1, "sudo -S -p '' id -u", {user: 'deploy', input: 'wrong\n'})
      assert.notEqual(bad.code, 0)
      assert.doesNotMatch(readFileSync(lab!.host('w1').pathOnMachine('/etc/shadow'), 'utf8'), new RegExp(password))
      assert.equal(existsSync('/etc/sudoers.d/lab-deploy'), false, 'the sudoers line is the host’s own')
    })

    it('a new host key is refused by strict checking until known_hosts learns it; sshd stops and starts', async () => {
      const w2 = lab!.host('w2')
      const before = w2.hostKey
      await w2.regenerateHostKey()
      assert.notEqual(w2.hostKey, before)
      const changed = await ssh(lab!, w2.address, 'true')
      assert.match(changed.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED/)
      await w2.stopSshd()
      assert.match((await ssh(lab!, w2.address, 'true')).stderr, /Connection refused/)
      await w2.startSshd()
      const keyscan = ok(await runCommand('ssh-keyscan', ['-t', 'ed25519', w2.address]), 'ssh-keyscan')
      assert.ok(keyscan.includes(w2.hostKey), 'the restarted sshd serves the new key')
    })

    it('the proxy lets CONNECT through to allowed hosts and answers "403 Filtered" for others', async () => {
      const proxy = await lab!.startProxy({allow: ['w1']})
      try {
        const through = await connectThrough(proxy.url, `${lab!.host('w1').address}:22`)
        assert.match(through, /^HTTP\/1\.[01] 200 /)
        assert.match(through, /SSH-2\.0-OpenSSH/)
        const filtered = await connectThrough(proxy.url, `${lab!.host('w2').address}:22`)
        assert.match(filtered, /^HTTP\/1\.[01] 403 Filtered/)
      } finally {
        await proxy.stop()
      }
    })
  })

  describe('a bastion', () => {
    let lab: Lab | undefined
    before(async function () {
      requireLab(this)
      requireTool(this, 'ssh', 'openssh-client')
      lab = await createLab({bastion: true, hosts: [{name: 'inner'}, {name: 'quiet', listening: false}]})
    })
    after(async () => {
      await lab?.destroy()
    })

    it('hosts behind it are reachable only through it', async () => {
      const inner = lab!.host('inner')
      const direct = await ssh(lab!, inner.address, 'true', {extra: ['-o', 'ConnectTimeout=2']})
      assert.notEqual(direct.code, 0, 'the machine has no link to the hosts behind the bastion')
      const jump = [
        '-o',
        `ProxyCommand=ssh -F /dev/null -i ${lab!.identityFile} -o UserKnownHostsFile=${lab!.knownHosts} -o StrictHostKeyChecking=yes -o BatchMode=yes -W %h:%p root@${lab!.bastion!.address}`,
      ]
      assert.equal(
        ok(await ssh(lab!, inner.address, 'hostname', {extra: jump}), 'ssh through the bastion').trim(),
        'inner',
      )
      assert.match(
        await inner.sshdLog(),
        new RegExp(`Accepted publickey for root from ${lab!.subnet.replace(/\.0\/24$/, '')}\\.129 `),
      )
    })

    it('destroy() removes every recorded resource of the lab, the bastion’s inner bridge and links too', async () => {
      const records = await labRecords(lab!.dir)
      assert.ok(records.some(([host, kind, , side]) => host === 'inner' && kind === 'veth' && side !== '-'))
      const downAt = ticksNow()
      await lab!.destroy()
      assert.deepEqual(await eventually(() => labLeftovers(records, downAt)), [])
      assert.equal(existsSync(lab!.dir), false)
    })
  })

  describe('a forwarded address (workers.sh host-forward)', () => {
    let lab: Lab | undefined
    before(async function () {
      requireLab(this)
      requireTool(this, 'ssh', 'openssh-client')
      requireTool(this, 'iptables')
      lab = await createLab({hosts: [{name: 'natted', forwarded: true}]})
    })
    after(async () => {
      await lab?.destroy()
    })

    it('reaches the host’s sshd at an address it does not have; destroy() removes the DNAT rule', async () => {
      const host = lab!.host('natted')
      const forwarded = host.forwardedAddress!
      assert.equal(forwarded, `${lab!.subnet.replace(/\.0\/24$/, '')}.200`)
      const addresses = ok(await host.exec(['ip', '-o', 'addr', 'show']), 'ip addr')
      assert.doesNotMatch(addresses, new RegExp(` ${forwarded.replaceAll('.', '\\.')}/`), 'the host lacks it')
      assert.ok(readFileSync(lab!.knownHosts, 'utf8').includes(`${forwarded} ${host.hostKey}\n`))
      assert.equal(ok(await ssh(lab!, forwarded, 'hostname'), 'ssh to the forwarded address').trim(), 'natted')
      const records = await labRecords(lab!.dir)
      assert.ok(records.some(([name, kind, id]) => name === 'natted' && kind === 'dnat' && id === forwarded))
      const downAt = ticksNow()
      await lab!.destroy()
      assert.deepEqual(await eventually(() => labLeftovers(records, downAt)), [])
    })
  })

  describe('workers.sh up / exec / down (the user lab’s verbs, on a claimed subnet)', () => {
    let lab: Lab | undefined
    before(async function () {
      requireLab(this)
      lab = await createLab({hosts: []}) // claims a subnet and its bridge; `up` adds w1..wN to it
    })
    after(async () => {
      await lab?.destroy()
    })

    it('up 2 (twice), up 1, exec 1 hostname, up after its init died, down: nothing recorded is left (namespaces, links, processes, mounts)', async () => {
      const up = await runWorkers(lab!.dir, ['up', '2'])
      assert.equal(up.code, 0, up.stderr)
      assert.match(up.stdout, /^w1 +10\.213\.\d+\.11 /m)
      const records = await labRecords(lab!.dir)
      const kinds = new Set(records.map((r) => r[1]))
      for (const kind of ['bridge', 'netns', 'veth', 'pid', 'mntns', 'claim'])
        assert.ok(kinds.has(kind), `records a ${kind}`)

      const again = await runWorkers(lab!.dir, ['up', '2'])
      assert.equal(again.code, 0, again.stderr)
      assert.deepEqual(await labRecords(lab!.dir), records, 'a second up changes nothing')

      const w2 = records.filter(([host]) => host === 'w2')
      const w2Gone = ticksNow()
      const one = await runWorkers(lab!.dir, ['up', '1'])
      assert.equal(one.code, 0, one.stderr)
      assert.doesNotMatch(one.stdout, /^w2 /m)
      assert.deepEqual(await eventually(() => labLeftovers(w2, w2Gone)), [], 'up 1 removes w2')
      assert.equal(readFileSync(join(lab!.dir, 'ssh/known_hosts'), 'utf8').split('\n').filter(Boolean).length, 1)

      const hostname = await runWorkers(lab!.dir, ['exec', '1', 'hostname'])
      assert.equal(hostname.stdout, 'w1\n')
      const missing = await runWorkers(lab!.dir, ['exec', '7', 'true'])
      assert.equal(missing.code, 1)
      assert.match(missing.stderr, /workers\.sh: no host w7 in /)

      // A host whose init has ended (as after a restart of the machine) is made again by up, with its key.
      const knownHosts = readFileSync(join(lab!.dir, 'ssh/known_hosts'), 'utf8')
      const init = records.find(([host, kind, , , role]) => host === 'w1' && kind === 'pid' && role === 'init')!
      const killedAt = ticksNow()
      process.kill(Number(init[2]), 'SIGKILL')
      const remade = await runWorkers(lab!.dir, ['up', '1'])
      assert.equal(remade.code, 0, remade.stderr)
      const oldW1 = records.filter(([host, kind]) => host === 'w1' && ['pid', 'mntns', 'netns-inode'].includes(kind))
      assert.deepEqual(await eventually(() => labLeftovers(oldW1, killedAt)), [], 'the old w1 is gone')
      assert.notDeepEqual(
        await labRecords(lab!.dir),
        records.filter(([host]) => host !== 'w2'),
      )
      assert.equal(readFileSync(join(lab!.dir, 'ssh/known_hosts'), 'utf8'), knownHosts, 'the same host key')
      assert.equal((await runWorkers(lab!.dir, ['exec', '1', 'hostname'])).stdout, 'w1\n')

      const last = await labRecords(lab!.dir)
      const downAt = ticksNow()
      const down = await runWorkers(lab!.dir, ['down'])
      assert.equal(down.code, 0, down.stderr)
      // Each part is checked against the time it was removed (a freed namespace inode is soon reused).
      assert.deepEqual(await eventually(() => labLeftovers(last, downAt)), [])
      assert.deepEqual(await labRecords(lab!.dir), [], 'the record is empty')
    })
  })

  describe('labs side by side', () => {
    it('two labs made at once get their own subnets, bridges and hosts', async function () {
      requireLab(this)
      requireTool(this, 'ssh-keyscan', 'openssh-client')
      const made = await Promise.allSettled([createLab({hosts: [{name: 'w1'}]}), createLab({hosts: [{name: 'w1'}]})])
      const labs = made.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
      try {
        assert.equal(labs.length, 2, String(made.find((result) => result.status === 'rejected')?.reason))
        const [a, b] = labs
        assert.notEqual(a.subnet, b.subnet)
        for (const lab of labs) {
          const w1 = lab.host('w1')
          const scan = ok(await runCommand('ssh-keyscan', ['-t', 'ed25519', w1.address]), 'ssh-keyscan')
          assert.ok(scan.includes(w1.hostKey), `${w1.address} serves its own lab's key`)
        }
        assert.notEqual(a.host('w1').hostKey, b.host('w1').hostKey)
      } finally {
        for (const lab of labs) await lab.destroy()
      }
    })

    it('a lab its test process did not destroy is taken down when that process exits', async function () {
      requireLab(this)
      const helper = new URL('../helpers/lab.js', import.meta.url).href
      const program = `
        import {createLab, labRecords, ticksNow} from ${JSON.stringify(helper)}
        const lab = await createLab({hosts: [{name: 'w1'}]})
        console.log(JSON.stringify({dir: lab.dir, records: await labRecords(lab.dir), downAt: ticksNow()}))
        process.exit(0)`
      const child = ok(
        await runCommand(process.execPath, ['--input-type=module', '-e', program]),
        'a process making a lab',
      )
      const {dir, records, downAt} = JSON.parse(child) as {dir: string; records: string[][]; downAt: number}
      assert.ok(records.some(([, kind]) => kind === 'pid'))
      assert.deepEqual(await eventually(() => labLeftovers(records, downAt)), [])
      assert.equal(existsSync(dir), false)
    })

    it('a lab whose test process died is taken down by the next lab that claims its subnet', async function () {
      requireLab(this)
      const owner = spawn('sleep', ['600'], {stdio: 'ignore'})
      const dir = await mkdtemp(join(tmpdir(), 'hybrid-lab-orphan-'))
      let lab: Lab | undefined
      try {
        const claim = await runWorkers(dir, ['claim', String(owner.pid)])
        assert.equal(claim.code, 0, claim.stderr)
        const net = claim.stdout.trim()
        assert.equal((await runWorkers(dir, ['host-add', 'w1', '1'])).code, 0)
        const records = await labRecords(dir)
        const exited = new Promise((resolve) => owner.once('exit', resolve))
        owner.kill('SIGKILL')
        await exited
        const downAt = ticksNow()

        lab = await createLab({subnet: `${net}.0/24`, hosts: [{name: 'w1'}]})
        // Names (netns, bridge, claim) are the same subnet's again; the old lab's processes and namespaces are gone.
        const byIdentity = records.filter(([, kind]) => ['pid', 'mntns', 'netns-inode'].includes(kind))
        assert.ok(byIdentity.some(([, kind]) => kind === 'pid'))
        assert.deepEqual(await eventually(() => labLeftovers(byIdentity, downAt)), [])
        assert.equal(existsSync(join(dir, 'state')), false, 'the old lab’s record is emptied')
        assert.equal(ok(await lab.host('w1').exec(['hostname']), 'hostname').trim(), 'w1')
      } finally {
        owner.kill('SIGKILL')
        await lab?.destroy()
        await runWorkers(dir, ['down', '--purge'])
        await rm(dir, {recursive: true, force: true})
      }
    })
  })
})

/** Send CONNECT through an HTTP proxy; what came back within a second (status line, then the tunnel's bytes). */
function connectThrough(proxyUrl: string, target: string): Promise<string> {
  const {hostname, port} = new URL(proxyUrl)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    let received = ''
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`))
    socket.on('data', (chunk: string) => (received += chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(received))
    setTimeout(() => socket.destroy(), 1500)
  })
}

/** Killed processes take a moment to be reaped: poll a check until it comes back empty (or 5 s pass). */
async function eventually(check: () => Promise<string[]>): Promise<string[]> {
  let left = await check()
  for (let i = 0; i < 50 && left.length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    left = await check()
  }
  return left
}
