/** What users see: tables, durations and sizes, plan summaries, progress on a terminal or as JSON. */
export {formatBytes, formatDuration} from './format.js'
export {renderChanges, renderHostTable, renderOutcomeLine, renderSummary} from './plan-summary.js'
export {createProgress, progressMode, type ProgressOptions} from './progress.js'
export {renderRows, type RowState} from './progress-rows.js'
export {renderTable} from './table.js'
export {renderWorkerRows, renderWorkers} from './workers.js'
export {renderUpSummary} from './up-summary.js'
