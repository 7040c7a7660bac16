export * from './fake-model.js';
export * from './git-fixtures.js';
export * from './run-bin.js';
export * from './valet-root.js';
