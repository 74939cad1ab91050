// Writes inventory/schema.json from the schema code (npm run build:ts && npm run schema).
import {fileURLToPath} from 'node:url'

import {inventoryJsonSchemaText} from '../src/inventory/json-schema.js'
import {writeFileAtomic} from '../src/util/fs-atomic.js'

// This file runs as dist/scripts/write-schema.js; the repository is two levels up.
const target = fileURLToPath(new URL('../../inventory/schema.json', import.meta.url))
await writeFileAtomic(target, inventoryJsonSchemaText())
process.stdout.write(`wrote ${target}\n`)
