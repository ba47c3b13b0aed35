#!/usr/bin/env node
// The `neuro` command. Neuro runs its TypeScript through tsx (a runtime dependency), so there is no
// build step between a fresh clone and a running server.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
