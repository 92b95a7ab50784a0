// Builds policy.js into a pure component (no WASI imports) with the componentize-js API.
// (The `jco componentize` CLI of jco 1.35 cannot read the WIT directory; the API works.)
import { componentize } from '@bytecodealliance/componentize-js';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const { component } = await componentize({
  sourcePath: here('./policy.js'),
  witPath: here('./wit'),
  worldName: 'scaling-policy',
  disableFeatures: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],
});
await writeFile(here('./policy.wasm'), component);
console.log(`wrote policy.wasm (${component.length} bytes)`);
