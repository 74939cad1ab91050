/**
 * The one writer of human text on stderr. On a terminal, progress rows are redrawn in place (a "live
 * region" at the bottom); a log line written under them would be erased by the next redraw or leave
 * half a frame behind. So every stderr line goes through `writeStderr`, which takes the live region
 * off the screen, writes the line, and draws the region again below it.
 *
 * process.stderr is synchronous on Linux for terminals, files and pipes, so lines and frames written
 * here keep their order and are not lost when the process exits.
 */

/** What the progress display registers while its rows are on screen. */
export interface LiveRegion {
  /** Erase the rows from the screen (the cursor ends where the first row was). */
  clear(): void
  /** Draw the rows again, below whatever was written since `clear`. */
  redraw(): void
}

let live: LiveRegion | undefined

/** Make `region` the live region until the returned function is called. */
export function attachLiveRegion(region: LiveRegion): () => void {
  live = region
  return () => {
    if (live === region) live = undefined
  }
}

/** Is a live region on screen now? */
export function liveRegionActive(): boolean {
  return live !== undefined
}

/** Write `text` (one or more whole lines) to stderr without garbling the live region. */
export function writeStderr(text: string): void {
  const region = live
  if (!region) {
    process.stderr.write(text)
    return
  }
  region.clear()
  process.stderr.write(text)
  region.redraw()
}
