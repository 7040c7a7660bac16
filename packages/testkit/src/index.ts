export * from './fake-github.js';
export * from './fake-model.js';
export * from './git-fixtures.js';
export * from './git-server.js';
export * from './run-bin.js';
export * from './run-record.js';
export * from './valet-root.js';
export * from './hostile-names.js';
