export * from './fake-model.js';
