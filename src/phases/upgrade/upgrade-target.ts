import type {JoinTarget} from '../join/join-target.js'

/** One worker in an upgrade's rollout: a join target that also knows the version and its batch. */
export interface UpgradeTarget extends JoinTarget {
  /** The k3s version the rollout moves the worker to. */
  readonly to: string
  /** "batch 2 of 3", for the dry-run's order and the log. */
  readonly batch: string
}
