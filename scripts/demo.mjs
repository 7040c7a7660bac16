// Placeholder until the pipeline issues land: says what is missing.
console.error('make demo: the pipeline (pv-claim … pv-settle, pv-watcher) is not built yet; see issues 3-6.');
process.exitCode = 1;
