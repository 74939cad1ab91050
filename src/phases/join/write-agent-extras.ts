import {type ExtraFile, survey, wantedExtras, writeExtra} from '../../agent/agent-extras.js'
import {removePaths} from '../../agent/worker-files.js'
import {HybridError} from '../../errors.js'
import type {HostHandle} from '../../plan/index.js'
import {remoteLimits} from '../../remote/limits.js'
import {type FileInstalled, readWorkerRecord, recordInstalled} from '../../state/worker-records.js'
import {connected, type JoinStep, type JoinTarget, stepDeadlineMs} from './join-target.js'

/**
 * registries.yaml (spec.registries), the agent's `files` and the image archives (spec.images.archives),
 * each written only when its sha256 or mode differs there, and those hybrid wrote before but the inventory
 * no longer names removed. Any change restarts the agent (k3s reads registries.yaml and imports the archives
 * when it starts); a worker whose files are as they should be is left alone. A file already there that
 * hybrid did not put there is never replaced: the worker fails with a sentence naming it.
 */
export const writeAgentExtrasStep: JoinStep = {
  title: 'write registries, files and images',
  deadlineMs: (t) => stepDeadlineMs(t, remoteLimits(t.worker.ssh).uploadTimeoutSeconds * 1000),
  async run(target: JoinTarget, handle: HostHandle) {
    const {run, worker} = target
    const {host} = connected(target)
    const recorded = (await readWorkerRecord(run.cluster, worker.name))?.installed.extras ?? []
    const wanted = await wantedExtras(worker, run.inventory)
    if (wanted.length === 0 && recorded.length === 0) return
    const ours = new Set(recorded.map((r) => r.path))
    const there = await survey(host, [...new Set([...wanted.map((f) => f.path), ...ours])])
    const differs = (f: ExtraFile) => there.get(f.path)?.sha256 !== f.sha256 || there.get(f.path)?.mode !== f.mode
    for (const f of wanted) {
      if (!there.has(f.path) || ours.has(f.path) || !differs(f)) continue
      throw new HybridError(
        'AGENT_FILE_FOREIGN',
        `${worker.name}: ${f.path} is there already and hybrid did not put it there; remove it from the worker, or take the ${f.what} out of the inventory`,
      )
    }
    const toWrite = wanted.filter(differs)
    const stale = recorded.filter((r) => !wanted.some((f) => f.path === r.path))
    // What hybrid owns once this step is done: what it wrote now or before (a matching file it found stays unrecorded).
    const owned: FileInstalled[] = wanted
      .filter((f) => ours.has(f.path) || toWrite.includes(f))
      .map((f) => ({path: f.path, sha256: f.sha256}))
    if (toWrite.length === 0 && stale.length === 0) {
      handle.logger.debug('registries, files and images are as they should be')
      return
    }
    const sentence = [
      ...toWrite.map((f) => `write the ${f.what} ${f.path} (${f.mode.toString(8).padStart(4, '0')})`),
      ...stale.map((r) => `remove ${r.path} (no longer in the inventory)`),
    ].join(', ')
    await run.ctx.wet(worker.name, sentence, async () => {
      // The intent first: a crash in between leaves every path that may now be hybrid's in the record.
      const intent = [...recorded.filter((r) => !owned.some((o) => o.path === r.path)), ...owned]
      await recordInstalled(run.cluster, worker, {extras: intent})
      for (const f of toWrite) {
        await writeExtra(host, f, there.get(f.path))
        handle.logger.info(`${f.what} ${f.path} written`)
      }
      await removePaths(
        host,
        stale.map((r) => r.path),
      )
      await recordInstalled(run.cluster, worker, {extras: owned})
      target.agentChanged = true
    })
  },
}
