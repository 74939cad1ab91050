#!/usr/bin/env node
// The `hybrid` executable: oclif finds the compiled commands under dist/src/commands.
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
