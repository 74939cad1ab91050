import {type MachineSysctls, readMachineSysctls, restoreMachineSysctls} from './machine-sysctls.js'

/**
 * Mocha root hooks shared by every test file (registered in .mocharc.json): what the machine's kubelet
 * tunables were before the run, and putting them back after each test and once more at the end, so that
 * a test that ran the k3s stand-in's agent on the host (which writes them machine-wide, as a kubelet
 * does) leaves the machine as it found it, and later tests (preflight's procsys row) see the machine's
 * own values.
 */
let before: MachineSysctls | undefined

/** The values recorded before the run (for the test that checks this mechanism). */
export function sysctlsBeforeRun(): MachineSysctls | undefined {
  return before
}

async function restore(): Promise<void> {
  if (!before) return
  const written = await restoreMachineSysctls(before)
  if (written.length > 0) process.stdout.write(`      (machine sysctls put back: ${written.join(', ')})\n`)
}

export const mochaHooks = {
  async beforeAll(): Promise<void> {
    before ??= await readMachineSysctls()
  },
  afterEach: restore,
  afterAll: restore,
}
