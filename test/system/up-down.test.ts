import {strict as assert} from 'node:assert'
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {existsSync} from 'node:fs'
import {access, mkdir, readdir, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {parse} from 'yaml'

import {requireTool} from '../helpers/requires.js'
import {kubeconfigSecrets, secretsFound} from '../helpers/secret-forms.js'
import {
  type ClusterFixture,
  cleanupFixture,
  cmdline,
  errorSentence,
  hybrid,
  makeFixture,
  readStateFile,
  recordPids,
  REPO,
  run,
  waitFor,
} from './cluster-fixture.js'

/**
 * `hybrid up`, `status`, `kubeconfig` and `down` end to end on this machine, with the k3s stand-in as an
 * agentless server (no kubelet, so nothing on the host's /proc/sys or /dev/kmsg is touched): real
 * processes, a real HTTPS API on 127.0.0.1, real signals. gVisor's part is in test/sandbox.
 */

async function gone(path: string): Promise<boolean> {
  try {
    await access(path)
    return false
  } catch {
    return true
  }
}

describe('hybrid up / status / kubeconfig / down (control plane, stand-in k3s)', function () {
  this.timeout(180_000)
  let fixture: ClusterFixture | undefined

  afterEach(async () => {
    await cleanupFixture(fixture)
    fixture = undefined
  })

  it('brings the cluster up detached, does nothing the second time, and brings it down (twice)', async () => {
    fixture = await makeFixture()
    // Up runs where no `hybrid` is on PATH (setup may have linked one), so the hints it prints must name the program.
    const noHybridPath = (process.env.PATH ?? '')
      .split(':')
      .filter((dir) => dir !== '' && !existsSync(join(dir, 'hybrid')))
      .join(':')
    const up = await hybrid(fixture, ['up', '--inventory', fixture.inventory, '--detach'], {env: {PATH: noHybridPath}})
    assert.equal(up.code, 0, up.stderr)
    assert.match(up.stdout, /cluster lab is up/)
    const first = await recordPids(fixture)
    assert.ok(first.supervisor && first.k3s, 'the state names the supervisor and k3s')
    assert.match((await cmdline(first.supervisor))!, /run\.js up --inventory .* --supervise/)
    assert.match((await cmdline(first.k3s))!, /k3s-standin\/k3s server --config .*\/data\/config\.yaml/)

    const paths = join(fixture.stateDir, 'clusters', 'lab')
    const kubeconfigFile = join(paths, 'kubeconfig')
    assert.equal((await stat(kubeconfigFile)).mode & 0o777, 0o600)
    assert.equal((await stat(join(fixture.dataDir, 'config.yaml'))).mode & 0o777, 0o600)
    const kubeconfigText = await readFile(kubeconfigFile, 'utf8')
    const kubeconfig = parse(kubeconfigText)
    assert.equal(kubeconfig['current-context'], 'lab')
    assert.equal(kubeconfig.clusters[0].cluster.server, `https://127.0.0.1:${fixture.apiPort}`)
    const readyz = await run('kubectl', ['--kubeconfig', kubeconfigFile, 'get', '--raw', '/readyz'])
    assert.equal(readyz.stdout.trim(), 'ok', readyz.stderr)

    const status = await hybrid(fixture, ['status', '--json'])
    assert.equal(status.code, 0, status.stderr)
    const doc = JSON.parse(status.stdout)
    assert.equal(doc.cluster, 'lab')
    assert.equal(doc.up, true)
    assert.equal(doc.phase, 'ready')
    assert.deepEqual(
      {pid: doc.supervisor.pid, alive: doc.supervisor.alive, detached: doc.supervisor.detached},
      {pid: first.supervisor, alive: true, detached: true},
    )
    assert.equal(doc.k3s.pid, first.k3s)
    assert.equal(doc.k3s.alive, true)
    assert.equal(doc.k3s.restarts, 0)
    assert.ok(doc.k3s.uptimeSeconds >= 0)
    assert.deepEqual(doc.api, {server: `https://127.0.0.1:${fixture.apiPort}`, ready: true})

    const printed = await hybrid(fixture, ['kubeconfig', '--context', 'lab-sandbox'])
    assert.equal(printed.code, 0, printed.stderr)
    assert.equal(parse(printed.stdout)['current-context'], 'lab-sandbox')

    const userKubeconfig = join(fixture.dir, 'home', '.kube', 'config')
    const merged = await hybrid(fixture, ['kubeconfig', '--merge'], {env: {KUBECONFIG: userKubeconfig}})
    assert.equal(merged.code, 0, merged.stderr)
    assert.equal(merged.stdout, '', 'with --merge the secret goes to the file only')
    assert.equal((await stat(userKubeconfig)).mode & 0o777, 0o600)
    const viaMerged = await run('kubectl', [
      '--kubeconfig',
      userKubeconfig,
      '--context',
      'lab',
      'get',
      '--raw',
      '/readyz',
    ])
    assert.equal(viaMerged.stdout.trim(), 'ok', viaMerged.stderr)

    const again = await hybrid(fixture, ['up', '--inventory', fixture.inventory, '--detach'])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /cluster lab is already up; nothing to change/)
    assert.deepEqual(await recordPids(fixture), first, 'the second up started nothing')

    // The hint up printed, run as printed by a shell whose PATH has no `hybrid`.
    const hint = /^ {2}(.+ down) +\(stops it/m.exec(up.stdout)?.[1]
    assert.ok(hint, up.stdout)
    const down = await run('sh', ['-c', hint], {env: {...fixture.env, PATH: noHybridPath}})
    assert.equal(down.code, 0, down.stderr)
    assert.match(down.stdout, /cluster lab is down/)
    assert.doesNotMatch(down.stderr, / skipped\n/, 'a phase down skips says why')
    assert.equal(await cmdline(first.supervisor), undefined, 'the supervisor is gone')
    assert.equal(await cmdline(first.k3s), undefined, 'k3s is gone')
    assert.deepEqual((await readdir(paths)).sort(), ['k3s.log', 'supervisor.log'], 'only the logs stay')
    const status2Run = await hybrid(fixture, ['status', '--json'])
    const status2 = JSON.parse(status2Run.stdout)
    assert.equal(status2.up, false)

    const down2 = await hybrid(fixture, ['down', '--inventory', fixture.inventory])
    assert.equal(down2.code, 0, down2.stderr)
    assert.match(down2.stdout, /cluster lab is not up; nothing to do/)

    // The kubeconfig never reaches a log, nor any output but `kubeconfig`'s own stdout: its client key,
    // certificate (and token, were there one) in any form, in every log file the run wrote.
    const secrets = kubeconfigSecrets(kubeconfigText)
    assert.ok(secrets.has('client-key-data of user lab'), 'the kubeconfig has a client key to look for')
    const logs = [join(fixture.stateDir, 'logs', 'hybrid.log'), join(paths, 'supervisor.log'), join(paths, 'k3s.log')]
    const texts = new Map<string, string>()
    for (const log of logs) {
      const text = await readFile(log, 'utf8').catch(() => undefined)
      assert.ok(text, `${log} was written (a missing log would hide a leak)`)
      texts.set(log, text)
    }
    for (const extra of await readdir(join(fixture.stateDir, 'logs')))
      texts.set(join(fixture.stateDir, 'logs', extra), await readFile(join(fixture.stateDir, 'logs', extra), 'utf8'))
    const outputs = {up, status, merged, again, down, down2, status2: status2Run}
    for (const [name, result] of Object.entries(outputs)) {
      texts.set(`${name}'s stdout`, result.stdout)
      texts.set(`${name}'s stderr`, result.stderr)
    }
    texts.set("kubeconfig's stderr", printed.stderr)
    assert.deepEqual(secretsFound(texts, secrets), [], 'the kubeconfig never reaches a log or another output')
  })

  it("restarts a killed k3s, and gives up after the limit with the reason and k3s's last lines", async () => {
    fixture = await makeFixture()
    const env = {HYBRID_RESTART_LIMIT: '2', HYBRID_RESTART_BACKOFF_MS: '200'}
    const up = await hybrid(fixture, ['up', '--inventory', fixture.inventory, '--detach'], {env})
    assert.equal(up.code, 0, up.stderr)
    const {supervisor} = await recordPids(fixture)
    let previous = (await recordPids(fixture)).k3s!
    for (let restart = 1; restart <= 2; restart++) {
      process.kill(previous, 'SIGKILL')
      const next = await waitFor(`k3s restart ${restart}`, async () => {
        const doc = JSON.parse((await hybrid(fixture!, ['status', '--json'])).stdout)
        return doc.k3s?.pid !== previous && doc.k3s?.alive && doc.api?.ready ? doc : undefined
      })
      assert.equal(next.k3s.restarts, restart)
      assert.equal(next.supervisor.pid, supervisor, 'the same supervisor restarted it')
      previous = next.k3s.pid
      fixture.pids.add(previous)
    }
    process.kill(previous, 'SIGKILL')
    await waitFor('the supervisor to give up', async () =>
      (await cmdline(supervisor!)) === undefined ? true : undefined,
    )
    const state = await readStateFile(fixture)
    assert.equal(state?.phase, 'stopped')
    assert.equal(
      state?.failure,
      'k3s server died 3 times within 10 minutes (last time it was killed by SIGKILL); hybrid stopped restarting it',
    )
    const status = await hybrid(fixture, ['status'])
    assert.match(status.stdout, /cluster lab stopped: k3s server died 3 times/)
    const log = await readFile(join(fixture.stateDir, 'clusters', 'lab', 'supervisor.log'), 'utf8')
    assert.match(log, /hybrid stopped restarting it/)
    assert.match(log, /k3s is up and running/, "k3s's last lines are in the supervisor's report")
    const down = await hybrid(fixture, ['down'])
    assert.equal(down.code, 0, down.stderr)
    assert.equal(await readStateFile(fixture), undefined)
  })

  it("rotates k3s's log by size while k3s runs (k3s.log.1, 0600), and k3s goes on writing at the start of k3s.log", async () => {
    fixture = await makeFixture()
    const env = {HYBRID_LOG_ROTATE_BYTES: '512'}
    assert.equal((await hybrid(fixture, ['up', '--inventory', fixture.inventory, '--detach'], {env})).code, 0)
    const log = join(fixture.stateDir, 'clusters', 'lab', 'k3s.log')
    await waitFor('k3s.log to be rotated', async () => ((await gone(`${log}.1`)) ? undefined : true), 30_000)
    assert.equal((await stat(`${log}.1`)).mode & 0o777, 0o600)
    assert.ok((await stat(`${log}.1`)).size > 512, 'the rotated copy holds what was past the limit')
    const live = await readFile(log, 'utf8')
    assert.ok(!live.includes('\0'), 'no hole at the start of k3s.log: k3s appends')
    assert.equal((await hybrid(fixture, ['down'], {env})).code, 0)
  })

  it('cleans up after a supervisor that was killed: the next up, and down', async () => {
    fixture = await makeFixture()
    assert.equal((await hybrid(fixture, ['up', '--inventory', fixture.inventory, '--detach'])).code, 0)
    const crashed = await recordPids(fixture)
    process.kill(crashed.supervisor!, 'SIGKILL')
    await waitFor('the supervisor to die', async () =>
      (await cmdline(crashed.supervisor!)) === undefined ? true : undefined,
    )
    assert.ok(await cmdline(crashed.k3s!), 'its k3s outlived it (the case down must handle)')
    const status = JSON.parse((await hybrid(fixture, ['status', '--json'])).stdout)
    assert.equal(status.up, false)
    assert.equal(status.supervisor.alive, false)

    const up = await hybrid(fixture, ['up', '--inventory', fixture.inventory, '--detach'])
    assert.equal(up.code, 0, up.stderr)
    assert.match(up.stderr, /leftovers of a hybrid that stopped without cleaning up/)
    assert.match(up.stdout, /cluster lab is up/)
    assert.equal(await cmdline(crashed.k3s!), undefined, 'the leftover k3s was stopped')
    const second = await recordPids(fixture)
    assert.notEqual(second.k3s, crashed.k3s)

    process.kill(second.supervisor!, 'SIGKILL')
    await waitFor('the supervisor to die', async () =>
      (await cmdline(second.supervisor!)) === undefined ? true : undefined,
    )
    const down = await hybrid(fixture, ['down'])
    assert.equal(down.code, 0, down.stderr)
    assert.match(down.stdout, /cluster lab is down/)
    assert.equal(await cmdline(second.k3s!), undefined, 'down stopped the k3s the dead supervisor left')
    assert.equal(await readStateFile(fixture), undefined)
  })

  it('stays in the foreground until SIGTERM (here: from `hybrid down`), then stops k3s and leaves nothing of its own', async () => {
    fixture = await makeFixture()
    // Started as a user would, with a relative script path: /proc shows it so, and status and down must still recognise it.
    const child = spawn(process.execPath, ['bin/run.js', 'up', '--inventory', fixture.inventory], {
      cwd: REPO,
      env: fixture.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    fixture.pids.add(child.pid!)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    await waitFor('up to be ready', async () => (stdout.includes('cluster lab is up') ? true : undefined), 60_000)
    const {k3s, supervisor} = await recordPids(fixture)
    assert.equal(supervisor, child.pid, 'the foreground up is the supervisor')
    assert.ok(k3s)
    const status = JSON.parse((await hybrid(fixture, ['status', '--json'])).stdout)
    assert.deepEqual([status.up, status.supervisor.alive, status.supervisor.detached], [true, true, false])
    const exited = once(child, 'exit')
    const down = await hybrid(fixture, ['down'])
    assert.equal(down.code, 0, down.stderr)
    const [code] = await exited
    assert.equal(code, 0, stderr)
    assert.equal(await cmdline(k3s), undefined)
    assert.equal(await readStateFile(fixture), undefined)
    assert.deepEqual((await readdir(join(fixture.stateDir, 'clusters', 'lab'))).sort(), ['k3s.log'])
  })

  it('says in one sentence that the data dir is not writable, and leaves nothing behind', async () => {
    fixture = await makeFixture({dataDir: (dir) => join(dir, 'a-file', 'data')})
    await writeFile(join(fixture.dir, 'a-file'), 'not a directory')
    const up = await hybrid(fixture, ['up', '--inventory', fixture.inventory])
    assert.equal(up.code, 1)
    assert.equal(
      errorSentence(up.stderr),
      `hybrid: the data dir ${fixture.dataDir} (spec.controlPlane.dataDir) is not writable: a part of the path is not a directory`,
    )
    assert.equal(up.stderr.split('is not writable').length, 2, `said once:\n${up.stderr}`)
    assert.ok(await gone(join(fixture.stateDir, 'clusters', 'lab')), 'no state')
    assert.ok(await gone(join(fixture.dir, 'lab.token')), 'not even the token it would have made')
  })

  it('says in one sentence that the k3s binary is missing, and leaves nothing behind', async () => {
    fixture = await makeFixture({binary: (dir) => join(dir, 'no-such-k3s')})
    const up = await hybrid(fixture, ['up', '--inventory', fixture.inventory, '--detach'])
    assert.equal(up.code, 1)
    assert.equal(
      errorSentence(up.stderr),
      `hybrid: spec.k3s.binary ${join(fixture.dir, 'no-such-k3s')} does not exist.`,
    )
    assert.ok(await gone(fixture.dataDir), 'the data dir this up created is gone again')
    assert.ok(await gone(join(fixture.stateDir, 'clusters', 'lab')), 'no state')
  })

  it('under --dry-run lists what it would do and does none of it', async () => {
    fixture = await makeFixture()
    const dry = await hybrid(fixture, ['up', '--inventory', fixture.inventory, '--dry-run'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.match(dry.stdout, /^dry run: \d+ changes would be made:/)
    assert.match(dry.stdout, /control-plane: create the data dir /)
    assert.match(dry.stdout, /control-plane: start .*k3s server --config /)
    assert.ok(await gone(fixture.dataDir))
    assert.ok(await gone(join(fixture.stateDir, 'clusters')))
  })

  it('refuses a second up with other settings while the cluster is up', async () => {
    fixture = await makeFixture()
    assert.equal((await hybrid(fixture, ['up', '--inventory', fixture.inventory, '--detach'])).code, 0)
    await recordPids(fixture)
    const other = join(fixture.dir, 'other.yaml')
    await writeFile(other, (await readFile(fixture.inventory, 'utf8')).replace(/apiPort: \d+/, 'apiPort: 1'))
    const up = await hybrid(fixture, ['up', '--inventory', other])
    assert.equal(up.code, 1)
    assert.equal(
      errorSentence(up.stderr),
      'hybrid: cluster lab is up with other settings (controlPlane.apiPort changed); `hybrid down`, then `hybrid up`, applies them',
    )
  })

  it('needs --inventory when no cluster was brought up, and says so', async () => {
    fixture = await makeFixture()
    await mkdir(fixture.stateDir, {recursive: true})
    for (const command of ['status', 'down', 'kubeconfig']) {
      const result = await hybrid(fixture, [command])
      assert.equal(result.code, 2, command)
      assert.equal(
        errorSentence(result.stderr),
        `hybrid: no cluster has been brought up here (state dir ${fixture.stateDir}); name one with --inventory FILE`,
      )
    }
    const kubeconfig = await hybrid(fixture, ['kubeconfig', '--inventory', fixture.inventory])
    assert.equal(kubeconfig.code, 1)
    assert.match(kubeconfig.stderr, /cluster lab is not up \(it has no kubeconfig\)/)
  })

  before(function () {
    requireTool(this, 'kubectl', 'kubernetes-client')
  })
})
