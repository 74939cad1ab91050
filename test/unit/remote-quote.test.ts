import {strict as assert} from 'node:assert'
import {execFileSync} from 'node:child_process'

import {commandLine, quoteArg} from '../../src/remote/quote.js'

/** Values a user may write in labels, paths and taints, and every character a shell treats specially. */
export const AWKWARD_VALUES: readonly string[] = [
  'plain',
  '',
  'with space',
  "it's",
  "''",
  '"double"',
  '$(touch /tmp/hybrid-quote-pwned)',
  '`id`',
  '$HOME ${PATH}',
  'line one\nline two\n',
  'tab\there',
  'glob * ? [a-z]',
  '~root',
  '; rm -rf / #',
  'a\\b\\',
  '-n',
  '--',
  'key=value:NoSchedule',
  'ünïcödé ✓',
  '!event',
  '&|<>(){}',
]

describe('remote quoting', () => {
  it('leaves safe words alone and quotes the rest', () => {
    assert.equal(quoteArg('/usr/local/bin/k3s'), '/usr/local/bin/k3s')
    assert.equal(quoteArg('zone=a'), 'zone=a')
    assert.equal(quoteArg(''), "''")
    assert.equal(quoteArg('a b'), "'a b'")
    assert.equal(quoteArg("it's"), `'it'\\''s'`)
    assert.equal(quoteArg('~'), "'~'")
  })

  it('a POSIX shell (sh and bash) receives every argument byte for byte', () => {
    for (const shell of ['sh', 'bash']) {
      const line = commandLine(['printf', '%s\\0', ...AWKWARD_VALUES])
      const out = execFileSync(shell, ['-c', line])
      assert.deepEqual(out.toString().split('\0').slice(0, -1), AWKWARD_VALUES, shell)
    }
  })

  it('refuses a NUL byte and an empty command instead of sending something else', () => {
    assert.throws(() => quoteArg('a\0b'), /NUL byte/)
    assert.throws(() => commandLine([]), /program name/)
  })
})
