import {strict as assert} from 'node:assert'
import {execFileSync} from 'node:child_process'
import {lstat, mkdtemp, readFile, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {verifyHostKey} from '../../src/remote/host-key-policy.js'
import {
  fingerprint,
  formatKnownHostsLine,
  hostsFieldMatches,
  knownHostsName,
  lookUpKey,
  parseKnownHosts,
  recordKnownHost,
} from '../../src/remote/known-hosts.js'
import {RemoteError} from '../../src/remote/errors.js'
import {requireTool} from '../helpers/requires.js'

/** A fresh ed25519 public key from ssh-keygen: [blob, "ssh-ed25519 AAAA…", ssh-keygen's own fingerprint]. */
function newKey(dir: string, name: string, type = 'ed25519'): {blob: Buffer; line: string; print: string} {
  const file = join(dir, name)
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', file])
  const line = execFileSync('cat', [`${file}.pub`])
    .toString()
    .trim()
  const print = execFileSync('ssh-keygen', ['-lf', `${file}.pub`])
    .toString()
    .split(' ')[1]
  return {blob: Buffer.from(line.split(' ')[1], 'base64'), line, print}
}

describe('known_hosts', function () {
  let dir: string
  before(function () {
    requireTool(this, 'ssh-keygen', 'openssh-client')
  })
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hybrid-known-hosts-'))
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('names a host as ssh does: bare for port 22, [host]:port otherwise', () => {
    assert.equal(knownHostsName('10.213.0.11', 22), '10.213.0.11')
    assert.equal(knownHostsName('10.213.0.11', 2222), '[10.213.0.11]:2222')
  })

  it('lowercases host names as ssh does, before matching and hashing', async () => {
    assert.equal(knownHostsName('Worker1.LAB', 22), 'worker1.lab')
    assert.equal(knownHostsName('Worker1.LAB', 2222), '[worker1.lab]:2222')
    const key = newKey(dir, 'k')
    // A hashed line as ssh writes it for `ssh Worker1.LAB` (it hashes the lowercased name).
    const file = join(dir, 'known_hosts')
    await writeFile(file, `${formatKnownHostsLine('worker1.lab', key.blob, true)}\n`)
    const check = {
      host: 'w1',
      address: 'Worker1.LAB',
      port: 22,
      policy: 'strict' as const,
      knownHosts: file,
      pinned: null,
    }
    assert.equal(await verifyHostKey(check, key.blob), 'known')
    // What hybrid records for an upper-case address, ssh-keygen finds under the lower-case name.
    const other = join(dir, 'known_hosts_new')
    assert.equal(await verifyHostKey({...check, knownHosts: other, policy: 'accept-new'}, key.blob), 'recorded')
    execFileSync('ssh-keygen', ['-F', 'worker1.lab', '-f', other], {stdio: 'ignore'})
  })

  it('prints the same SHA256 fingerprint as ssh-keygen', () => {
    const key = newKey(dir, 'k')
    assert.equal(fingerprint(key.blob), key.print)
  })

  it('matches patterns, negations and hashed names like ssh', () => {
    assert.ok(hostsFieldMatches('w1,10.213.0.11', '10.213.0.11'))
    assert.ok(hostsFieldMatches('10.213.0.*', '10.213.0.11'))
    assert.ok(!hostsFieldMatches('10.213.0.*,!10.213.0.11', '10.213.0.11'))
    assert.ok(!hostsFieldMatches('[10.213.0.11]:2222', '10.213.0.11'))
    const key = newKey(dir, 'k')
    const hashed = formatKnownHostsLine('[10.213.0.11]:2222', key.blob, true)
    assert.match(hashed, /^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /)
    assert.ok(hostsFieldMatches(hashed.split(' ')[0], '[10.213.0.11]:2222'))
    assert.ok(!hostsFieldMatches(hashed.split(' ')[0], '10.213.0.11'))
  })

  it('lines it writes, plain and hashed, are found by ssh-keygen -F', async () => {
    const a = newKey(dir, 'a')
    const b = newKey(dir, 'b')
    const file = join(dir, 'known_hosts')
    await recordKnownHost(file, '[127.0.0.1]:2201', a.blob)
    assert.match(execFileSync('ssh-keygen', ['-F', '[127.0.0.1]:2201', '-f', file]).toString(), /ssh-ed25519/)
    // A file already hashed (HashKnownHosts yes) gets hashed lines.
    const hashedFile = join(dir, 'known_hosts_hashed')
    await writeFile(hashedFile, `${formatKnownHostsLine('10.0.0.1', a.blob, true)}\n`, {mode: 0o644})
    await recordKnownHost(hashedFile, '10.213.0.12', b.blob)
    const text = await readFile(hashedFile, 'utf8')
    assert.ok(!text.includes('10.213.0.12'), 'the name is hashed')
    assert.match(
      execFileSync('ssh-keygen', ['-F', '10.213.0.12', '-f', hashedFile]).toString(),
      /Host 10.213.0.12 found/,
    )
    assert.equal((await stat(hashedFile)).mode & 0o777, 0o644, 'mode kept')
  })

  it('parallel appends lose no line', async () => {
    const file = join(dir, 'known_hosts')
    const keys = Array.from({length: 8}, (_, i) => newKey(dir, `k${i}`))
    await Promise.all(keys.map((k, i) => recordKnownHost(file, `[127.0.0.1]:${2200 + i}`, k.blob)))
    const lines = parseKnownHosts(await readFile(file, 'utf8'))
    assert.equal(lines.length, 8)
    keys.forEach((k, i) => assert.equal(lookUpKey(lines, `[127.0.0.1]:${2200 + i}`, k.blob).kind, 'known'))
  })

  it('recording judges the file again under its lock: a key another process recorded meanwhile is not appended twice, a different one is reported as changed', async () => {
    const a = newKey(dir, 'a')
    const b = newKey(dir, 'b')
    const file = join(dir, 'known_hosts')
    assert.deepEqual(await recordKnownHost(file, '10.0.0.1', a.blob), {kind: 'recorded'})
    const before = await readFile(file, 'utf8')
    assert.equal((await recordKnownHost(file, '10.0.0.1', a.blob)).kind, 'known')
    assert.equal((await recordKnownHost(file, '10.0.0.1', b.blob)).kind, 'changed')
    assert.equal(await readFile(file, 'utf8'), before)
  })

  it('appends through a symlinked known_hosts, which stays a symlink', async () => {
    const a = newKey(dir, 'a')
    const real = join(dir, 'real')
    await writeFile(real, '# mine', {mode: 0o600})
    const link = join(dir, 'known_hosts')
    await symlink(real, link)
    await recordKnownHost(link, '10.0.0.1', a.blob)
    assert.ok((await lstat(link)).isSymbolicLink())
    assert.equal(await readFile(real, 'utf8'), `# mine\n10.0.0.1 ${a.line.split(' ').slice(0, 2).join(' ')}\n`)
  })

  it('tells known, changed, revoked and unknown apart', () => {
    const a = newKey(dir, 'a')
    const b = newKey(dir, 'b')
    const text = `# comment\n\nw1,10.0.0.1 ${a.line}\n@revoked * ${b.line.split(' ').slice(0, 2).join(' ')}\n`
    const lines = parseKnownHosts(text)
    assert.deepEqual(lookUpKey(lines, '10.0.0.1', a.blob), {kind: 'known', line: 3})
    assert.equal(lookUpKey(lines, '10.0.0.1', b.blob).kind, 'revoked')
    const c = newKey(dir, 'c')
    assert.equal(lookUpKey(lines, '10.0.0.1', c.blob).kind, 'changed')
    assert.equal(lookUpKey(lines, '10.0.0.2', c.blob).kind, 'unknown')
  })

  describe('host-key policies', () => {
    const check = (policy: 'strict' | 'accept-new' | 'pinned', knownHosts: string, pinned: string | null = null) => ({
      host: 'w1',
      address: '10.213.0.11',
      port: 22,
      policy,
      knownHosts,
      pinned,
    })

    it('strict refuses an unknown key with its fingerprint and the settings that accept it, writing nothing', async () => {
      const key = newKey(dir, 'k')
      const file = join(dir, 'known_hosts')
      await assert.rejects(verifyHostKey(check('strict', file), key.blob), (error: RemoteError) => {
        assert.equal(error.code, 'SSH_HOST_KEY_UNKNOWN')
        assert.ok(error.message.startsWith('w1: the host key of 10.213.0.11:22, '))
        assert.ok(error.message.includes(key.print))
        assert.match(error.message, /hostKeyPolicy: accept-new/)
        assert.ok(!error.message.includes('\n'))
        return true
      })
      await assert.rejects(stat(file), /ENOENT/)
    })

    it('accept-new records an unknown key, then knows it, and refuses a changed one as a possible man-in-the-middle', async () => {
      const a = newKey(dir, 'a')
      const b = newKey(dir, 'b')
      const file = join(dir, 'known_hosts')
      assert.equal(await verifyHostKey(check('accept-new', file), a.blob), 'recorded')
      assert.equal(await verifyHostKey(check('accept-new', file), a.blob), 'known')
      assert.equal(await verifyHostKey(check('strict', file), a.blob), 'known')
      const before = await readFile(file, 'utf8')
      await assert.rejects(verifyHostKey(check('accept-new', file), b.blob), (error: RemoteError) => {
        assert.equal(error.code, 'SSH_HOST_KEY_CHANGED')
        assert.match(error.message, /man-in-the-middle/)
        assert.ok(error.message.includes(b.print) && error.message.includes(a.print))
        assert.match(error.message, /ssh-keygen -R '10\.213\.0\.11'/)
        return true
      })
      assert.equal(await readFile(file, 'utf8'), before, 'a changed key is never recorded')
    })

    it('accept-new refuses a key of a new type for a host known by another type, naming both fingerprints', async () => {
      const a = newKey(dir, 'a')
      const e = newKey(dir, 'e', 'ecdsa')
      const file = join(dir, 'known_hosts')
      assert.equal(await verifyHostKey(check('accept-new', file), a.blob), 'recorded')
      const before = await readFile(file, 'utf8')
      await assert.rejects(verifyHostKey(check('accept-new', file), e.blob), (error: RemoteError) => {
        assert.equal(error.code, 'SSH_HOST_KEY_CHANGED')
        assert.ok(
          error.message.startsWith('w1: the host key of 10.213.0.11:22 is now ecdsa-sha2-nistp256 '),
          error.message,
        )
        assert.ok(error.message.includes(e.print) && error.message.includes(`ssh-ed25519 ${a.print}`), error.message)
        assert.match(error.message, /man-in-the-middle/)
        return true
      })
      assert.equal(await readFile(file, 'utf8'), before, 'the new type is not recorded')
    })

    it('a hostKey is a pin under strict and accept-new too: another key is refused although known_hosts has it', async () => {
      const a = newKey(dir, 'a')
      const b = newKey(dir, 'b')
      const file = join(dir, 'known_hosts')
      await writeFile(file, `10.213.0.11 ${a.line}\n`)
      for (const policy of ['strict', 'accept-new'] as const) {
        await assert.rejects(verifyHostKey(check(policy, file, b.line), a.blob), (error: RemoteError) => {
          assert.equal(error.code, 'SSH_HOST_KEY_CHANGED')
          assert.ok(error.message.includes(`${a.print}, not the pinned hostKey ${b.print}`), error.message)
          return true
        })
      }
      assert.equal(await verifyHostKey(check('strict', file, a.line), a.blob), 'known')
      assert.equal(await readFile(file, 'utf8'), `10.213.0.11 ${a.line}\n`)
    })

    it('pinned compares with hostKey and never touches known_hosts', async () => {
      const a = newKey(dir, 'a')
      const b = newKey(dir, 'b')
      const file = join(dir, 'known_hosts')
      assert.equal(await verifyHostKey(check('pinned', file, a.line), a.blob), 'pinned')
      await assert.rejects(verifyHostKey(check('pinned', file, a.line), b.blob), /man-in-the-middle/)
      await assert.rejects(verifyHostKey(check('pinned', file, null), b.blob), /has no hostKey/)
      await assert.rejects(stat(file), /ENOENT/)
    })
  })
})
