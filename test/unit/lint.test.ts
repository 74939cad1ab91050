import {strict as assert} from 'node:assert'
import {execFile} from 'node:child_process'
import {rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const REPO = fileURLToPath(new URL('../../..', import.meta.url))

/** Runs `npm run lint` as CI does; resolves with its exit code and output. */
function lint(): Promise<{code: number; output: string}> {
  return new Promise((resolve) => {
    execFile('npm', ['run', '--silent', 'lint'], {cwd: REPO, maxBuffer: 16 << 20}, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolve({code, output: `${stdout}${stderr}`})
    })
  })
}

describe('npm run lint', function () {
  this.timeout(300_000)

  it('fails on an unused variable and a floating promise, naming the file and both rules', async () => {
    const file = join(REPO, 'src', `lint-probe-${process.pid}.ts`)
    await writeFile(
      file,
      "const unused = 1\n\nasync function later(): Promise<void> {}\n\nlater()\n\nexport const probe = 'x'\n",
    )
    try {
      const run = await lint()
      assert.notEqual(run.code, 0, run.output)
      assert.match(run.output, new RegExp(`lint-probe-${process.pid}\\.ts`))
      assert.match(run.output, /'unused' is assigned a value but never used.*@typescript-eslint\/no-unused-vars/)
      assert.match(run.output, /Promises must be awaited.*@typescript-eslint\/no-floating-promises/s)
    } finally {
      await rm(file, {force: true})
    }
  })
})
