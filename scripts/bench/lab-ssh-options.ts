import type {Lab} from '../../test/helpers/lab.js'

/** OpenSSH's options for a lab host, as the benchmarks' baselines log in: the lab key, the lab's known_hosts, strict, no prompts, no user config. */
export function labSshOptions(lab: Lab): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    lab.identityFile,
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${lab.knownHosts}`,
  ]
}
