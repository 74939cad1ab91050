import {strict as assert} from 'node:assert'
import {type ChildProcess, spawn} from 'node:child_process'
import {once} from 'node:events'

import {isAlive, isK3sServer, isRecordedProcess, terminate} from '../../src/util/processes.js'

/** A real process: `sh -c SCRIPT sh server --config x`, so its command line looks like a k3s server's. */
function start(script: string, ...args: string[]): ChildProcess {
  return spawn('sh', ['-c', script, 'fake-k3s', ...args], {stdio: 'ignore'})
}

describe('recorded processes', () => {
  const children: ChildProcess[] = []
  afterEach(() => {
    for (const child of children.splice(0))
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })

  it('recognises a recorded pid only while it runs the recorded command line', async () => {
    const child = start('while :; do sleep 0.2; done', 'server', '--config', '/x/config.yaml')
    children.push(child)
    await once(child, 'spawn')
    const pid = child.pid!
    assert.equal(await isRecordedProcess(pid, ['-c', 'while :; do sleep 0.2; done', 'server']), true)
    assert.equal(await isRecordedProcess(pid, ['agent']), false, 'another command line is another process')
    assert.equal(await isK3sServer(pid, '/usr/local/bin/fake-k3s'), true, 'argv names the binary and server')
    assert.equal(await isK3sServer(pid, '/usr/local/bin/k3s'), false)
    child.kill('SIGKILL')
    await once(child, 'exit')
    assert.equal(await isRecordedProcess(pid, ['-c']), false, 'a dead pid is not the recorded process')
    assert.equal(await isRecordedProcess(undefined, []), false)
    assert.equal(await isRecordedProcess(1, []), false, 'pid 1 is never taken for a recorded process')
  })

  it('terminates with SIGTERM, and with SIGKILL after the grace period when SIGTERM is ignored', async () => {
    const polite = start('while :; do sleep 0.2; done')
    const stubborn = start('trap "" TERM; while :; do sleep 0.1; done')
    children.push(polite, stubborn)
    await Promise.all([once(polite, 'spawn'), once(stubborn, 'spawn')])
    await new Promise((r) => setTimeout(r, 200)) // let the shell install its trap
    const [a, b] = await Promise.all([terminate(polite.pid!, 5000), terminate(stubborn.pid!, 500)])
    assert.equal(a, 'terminated')
    assert.equal(b, 'killed')
    assert.equal(await isAlive(polite.pid!), false)
    assert.equal(await isAlive(stubborn.pid!), false)
    assert.equal(await terminate(polite.pid!, 100), 'gone', 'a second stop is fine')
  })
})
