#!/usr/bin/env node
// Signal handlers first, before the rest of the watcher loads (see src/signals.ts).
import '../dist/signals.js';
import { runBin } from '@prompt-valet/core';
import { main } from '../dist/main.js';
runBin(main);
