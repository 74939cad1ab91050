/**
 * The host name every control-plane step carries in logs, changes and the summary: the sandbox this
 * hybrid runs in, as a worker's steps carry the worker's name.
 */
export const CONTROL_PLANE_HOST = 'control-plane'
