/** The plan runner's public face (docs/architecture.md, "Plans and phases"); actions and phases import from here. */
export {
  type AnyPhase,
  type Change,
  createPlanContext,
  type Gives,
  type Phase,
  Plan,
  type PlanContext,
  type PlanContextOptions,
  type PlanLedger,
  type PlanOutput,
  type ShouldRun,
  skip,
} from './phase.js'
export {planExitCode, type PhaseRecord, type PhaseStatus, type PlanFailure, type PlanResult, runPlan} from './runner.js'
export {
  errorSentence,
  forEachHost,
  type ForEachHostOptions,
  type HostHandle,
  type HostStep,
  runPool,
  type Settled,
} from './pool.js'
export {hostsExitCode, HostLedger, type HostOutcome, type HostStatus} from './outcomes.js'
export {type Progress, type ProgressEvent, type ProgressMode, silentProgress} from './progress-events.js'
export {summaryJson} from './summary.js'
export {handleInterrupts, type InterruptOptions, type Interrupts} from './interrupt.js'
