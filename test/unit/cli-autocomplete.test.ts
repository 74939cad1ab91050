import {strict as assert} from 'node:assert'
import {execFile} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {hasTool, isRoot, skipUnless} from '../helpers/requires.js'
import {RUN_JS} from '../system/cluster-fixture.js'

const execFileAsync = promisify(execFile)

/**
 * Shell completion (oclif's autocomplete plugin): `hybrid autocomplete bash` builds its cache and prints
 * the setup, in a network namespace of its own with no interface up (so nothing it does can need the
 * network); then real bash sources the setup line `hybrid autocomplete script bash` prints and asks the
 * completion function, as bash does on <TAB><TAB>.
 */
describe('shell completion', function () {
  this.timeout(60_000)
  let cache: string

  before(async function () {
    skipUnless(this, isRoot() && hasTool('unshare'), 'an empty network namespace needs root and unshare (util-linux)')
    skipUnless(this, hasTool('bash'), 'bash is missing')
    cache = await mkdtemp(join(tmpdir(), 'hybrid-autocomplete-'))
  })
  after(async () => {
    if (cache) await rm(cache, {recursive: true, force: true})
  })

  /** A bash program run with no network at all, hybrid being `node bin/run.js`. */
  async function offline(program: string): Promise<string> {
    const {stdout} = await execFileAsync(
      'unshare',
      ['--net', '--', 'bash', '-c', `hybrid() { "${process.execPath}" "${RUN_JS}" "$@"; }\n${program}`],
      {env: {...process.env, XDG_CACHE_HOME: cache, NO_COLOR: '1'}, timeout: 50_000},
    )
    return stdout
  }

  /** What bash's <TAB><TAB> offers after `words` (the last word being completed). */
  function completion(words: string[]): string {
    const quoted = words.map((w) => `'${w}'`).join(' ')
    return `COMP_WORDS=(hybrid ${quoted}); COMP_CWORD=${words.length}; _hybrid_autocomplete; printf '%s\\n' "\${COMPREPLY[@]}"`
  }

  it('`hybrid autocomplete bash` works offline, and bash then completes commands, topics and flags', async () => {
    const instructions = await offline('hybrid autocomplete bash')
    assert.match(instructions, /hybrid autocomplete script bash/)
    const setup = 'eval "$(hybrid autocomplete script bash)"'
    const commands = (await offline(`${setup}\n${completion([''])}`)).split(/\s+/).filter(Boolean)
    for (const command of ['up', 'down', 'status', 'kubeconfig', 'preflight', 'workers', 'init', 'inventory'])
      assert.ok(commands.includes(command), `${command} is not offered: ${commands.join(' ')}`)
    const workers = (await offline(`${setup}\n${completion(['workers', ''])}`)).split(/\s+/).filter(Boolean)
    assert.deepEqual(workers.sort(), ['add', 'list', 'remove'])
    const flags = await offline(`${setup}\n${completion(['kubeconfig', '--'])}`)
    assert.match(flags, /--merge/)
    assert.match(flags, /--inventory/)
  })
})
