#!/usr/bin/env node
// Builds what is out of date, and nothing else: the native addon, then the TypeScript (and the oclif
// manifest). It is npm's `prepare`, so it runs on `npm ci` and also on every `npx hybrid` from the
// checkout (npx installs the checkout into its cache as a directory dependency and runs `prepare` here,
// in place): there it finds everything up to date and returns at once.
//
// The addon is built in a temporary directory beside it and renamed into place, so a hybrid running
// meanwhile never finds it missing or half-written (it keeps the file it loaded). node-gyp's output is
// shown only when the build fails.
//
//   node scripts/build.js [native] [ts] [--force]     (default: both, each only when out of date)
import {spawnSync} from 'node:child_process'
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const args = process.argv.slice(2)
const force = args.includes('--force')
const parts = args.filter((a) => !a.startsWith('--'))
const wanted = parts.length > 0 ? parts : ['native', 'ts']

const RELEASE = join(root, 'native', 'build', 'Release')
const ADDON = join(RELEASE, 'hybrid_interceptor.node')
/** What node-gyp builds and hybrid uses: the tracer executable, then the addon (last: it is the stamp). */
const PRODUCTS = ['hybrid_tracer', 'hybrid_interceptor.node']

/** The newest modification time of the files under `paths` whose names pass `keep` (0 when none). */
function newest(paths, keep = () => true) {
  let latest = 0
  for (const path of paths) {
    if (!existsSync(path)) continue
    const info = statSync(path)
    if (info.isDirectory()) {
      const entries = readdirSync(path).filter((name) => name !== 'node_modules' && !name.startsWith('.'))
      latest = Math.max(
        latest,
        newest(
          entries.map((name) => join(path, name)),
          keep,
        ),
      )
    } else if (keep(path)) latest = Math.max(latest, info.mtimeMs)
  }
  return latest
}

/** Is `target` missing or older than any of `sources`? */
function stale(target, sources, keep) {
  return force || !existsSync(target) || statSync(target).mtimeMs < newest(sources, keep)
}

function run(command, argv, options = {}) {
  return spawnSync(command, argv, {cwd: root, encoding: 'utf8', ...options})
}

/** A failed step: its whole output, then one line saying which step (thrown, so scratch dirs go first). */
class BuildError extends Error {
  constructor(what, result) {
    super(
      `${result.stdout ?? ''}${result.stderr ?? ''}build: ${what} failed${result.error ? ` (${result.error.message})` : ''}\n`,
    )
  }
}

/** node-gyp: the one npm runs lifecycle scripts with, else the checkout's own (a dev dependency). */
function nodeGyp() {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp
  return createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js')
}

function buildNative() {
  const native = join(root, 'native')
  const missing = PRODUCTS.some((name) => !existsSync(join(RELEASE, name)))
  if (!missing && !stale(ADDON, [join(native, 'binding.gyp'), join(native, 'src')])) return
  process.stderr.write('build: the native addon (node-gyp)… ')
  const scratch = mkdtempSync(join(native, '.build-'))
  try {
    copyFileSync(join(native, 'binding.gyp'), join(scratch, 'binding.gyp'))
    cpSync(join(native, 'src'), join(scratch, 'src'), {recursive: true})
    const result = run(process.execPath, [nodeGyp(), 'rebuild', '--directory', scratch])
    if (result.status !== 0) {
      process.stderr.write('failed\n')
      throw new BuildError('node-gyp rebuild', result)
    }
    mkdirSync(RELEASE, {recursive: true})
    for (const name of PRODUCTS) renameSync(join(scratch, 'build', 'Release', name), join(RELEASE, name))
    process.stderr.write(`done: ${PRODUCTS.map((name) => relative(root, join(RELEASE, name))).join(', ')}\n`)
  } finally {
    rmSync(scratch, {recursive: true, force: true})
  }
}

function buildTypeScript() {
  // The manifest is written last, after tsc: it is the build's stamp.
  const manifest = join(root, 'oclif.manifest.json')
  const sources = ['src', 'test', 'scripts', 'tsconfig.json', 'package.json'].map((p) => join(root, p))
  if (!stale(manifest, sources, (p) => p.endsWith('.ts') || p.endsWith('.json'))) return
  process.stderr.write('build: the TypeScript (tsc)… ')
  const tsc = run(process.execPath, [
    createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc'),
    '-p',
    'tsconfig.json',
  ])
  if (tsc.status !== 0) {
    process.stderr.write('failed\n')
    throw new BuildError('tsc', tsc)
  }
  const written = run(process.execPath, [join(root, 'scripts', 'write-manifest.js')])
  if (written.status !== 0) throw new BuildError('writing oclif.manifest.json', written)
  process.stderr.write(`done: ${written.stdout.trim()}\n`)
}

try {
  if (wanted.includes('native')) buildNative()
  if (wanted.includes('ts')) buildTypeScript()
} catch (error) {
  if (!(error instanceof BuildError)) throw error
  process.stderr.write(error.message)
  process.exitCode = 1
}
