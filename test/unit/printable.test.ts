import {strict as assert} from 'node:assert'

import {printable} from '../../src/log/printable.js'
import {redactString} from '../../src/log/redact.js'
import {renderRows} from '../../src/ui/progress-rows.js'

describe('printable: control characters from elsewhere never reach a terminal as such', () => {
  it('writes ESC sequences, BEL, CR, DEL and C1 controls as \\xNN; keeps line feeds, tabs and other text', () => {
    assert.equal(printable('\x1b]0;pwned\x07'), '\\x1b]0;pwned\\x07')
    assert.equal(printable('\x1b[2Jcleared'), '\\x1b[2Jcleared')
    assert.equal(printable('a\rb\x00c\x7fd\x9be\x85'), 'a\\x0db\\x00c\\x7fd\\x9be\\x85')
    assert.equal(printable('line one\n\tline two ✓ ü'), 'line one\n\tline two ✓ ü')
  })

  it('redactString, which every log line and printed sentence passes, escapes them too', () => {
    assert.equal(redactString('w1: curl: (7) \x1b]0;pwned\x07 refused'), 'w1: curl: (7) \\x1b]0;pwned\\x07 refused')
  })

  it("a worker row's note (its error sentence) is escaped in the redrawn progress rows", () => {
    const frame = renderRows('join', [{host: 'w1', status: 'failed', step: 'connect', note: 'x\x1b[2Jy'}], 0, 200)
    assert.ok(!frame.includes('\x1b'), JSON.stringify(frame))
    assert.match(frame, /x\\x1b\[2Jy/)
  })
})
