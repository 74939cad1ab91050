/** The plan runner's public face (DESIGN.md §3); commands and phases import from here. */
export {
  type Change,
  createPlanContext,
  type Phase,
  type PlanContext,
  type PlanContextOptions,
  type PlanLedger,
  type ShouldRun,
  skip,
} from './phase.js'
export {exitCodeOf, type PhaseRecord, type PhaseStatus, type PlanFailure, type PlanResult, runPlan} from './runner.js'
export {
  errorSentence,
  forEachHost,
  type ForEachHostOptions,
  type HostHandle,
  type HostStep,
  runPool,
  type Settled,
} from './pool.js'
export {type ExitCode, exitCodeFor, HostLedger, type HostOutcome, type HostStatus} from './outcomes.js'
export {
  createProgress,
  type Progress,
  type ProgressEvent,
  type ProgressMode,
  type ProgressOptions,
  progressMode,
  silentProgress,
} from './progress.js'
export {renderRows, type RowState} from './progress-tty.js'
export {renderChanges, renderHostTable, renderOutcomeLine, renderSummary, renderTable, summaryJson} from './summary.js'
export {handleInterrupts, type InterruptOptions, type Interrupts} from './interrupt.js'
export {formatBytes, formatDuration} from './format.js'
