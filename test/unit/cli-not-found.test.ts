import {strict as assert} from 'node:assert'
import {spawn} from 'node:child_process'

import {hasTool, skipUnless} from '../helpers/requires.js'
import {RUN_JS} from '../system/cluster-fixture.js'

/**
 * A mistyped command in a terminal (a pty from util-linux `script`): hybrid names the command it did
 * not find and offers the closest one (oclif's not-found plugin), here declined with "n".
 */
describe('an unknown command', function () {
  this.timeout(60_000)

  it('`hybrid upp` in a terminal asks "Did you mean up?"', async function () {
    skipUnless(this, hasTool('script'), 'script (util-linux) is missing: apt-get install util-linux')
    const child = spawn('script', ['-qec', `${process.execPath} ${RUN_JS} upp`, '/dev/null'], {
      env: {...process.env, NO_COLOR: '1', TERM: 'dumb'},
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (d) => {
      output += d
      if (/Did you mean/.test(output) && child.stdin.writable) child.stdin.end('n\r')
    })
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    const text = output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    assert.match(text, /upp is not a hybrid command/)
    assert.match(text, /Did you mean up\?/)
    assert.equal(code, 127, text)
  })
})
