// The interceptor (docs/architecture.md, "The interceptor"): run a command with /proc/sys (or any path) redirected, via ptrace.
export type {ExitStatus, InterceptCounters, InterceptedProcess, InterceptOptions, Rule, RuleMode} from './types.js'
export {spawnIntercepted} from './spawn.js'
export {KUBELET_TUNABLES, writePrivateProcSysTree, writeProcSysTree} from './proc-sys-tree.js'
