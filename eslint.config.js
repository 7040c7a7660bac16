// ESLint (flat config) with typescript-eslint's type-aware rules, kept short:
// the rules that catch real bugs in code of this kind.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', 'packages/*/bundle*/**', '**/node_modules/**', '.tap/**', 'bench/out/**', 'packages/web/public/**'] },
  {
    files: ['packages/*/src/**/*.ts', 'packages/*/test/**/*.ts', 'test/**/*.ts'],
    extends: [tseslint.configs.base],
    // Comments that disable rules this short config does not enable are fine.
    linterOptions: { reportUnusedDisableDirectives: 'off' },
    languageOptions: {
      parserOptions: { project: ['./tsconfig.tests.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A promise nobody awaits hides its failure (and, in a step, loses a record).
      '@typescript-eslint/no-floating-promises': [
        'error',
        // tap tracks the subtests it starts; awaiting each top-level t.test() is not its idiom.
        { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      // An empty catch hides an error: handle a named errno or let it go.
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
);
