// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import reactHooks from 'eslint-plugin-react-hooks';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

/**
 * DESIGN.md's one-way layering, enforced: each zone names the folders of ours its files MAY
 * import from; every other `src/` folder is refused. `core` knows nothing of ours; the worker
 * never reaches the store; the monitor (browser code) may use only types from core (see the
 * web block below).
 */
const folders = ['core', 'api', 'store', 'manager', 'events', 'gfs', 'worker', 'client', 'cli'];
const mayImport = {
  './src/core': [],
  './src/api': ['core'],
  './src/store': ['core'],
  './src/gfs': ['core'],
  './src/client': ['core', 'api'],
  './src/worker': ['core', 'gfs', 'client', 'api'],
  './src/events': ['core', 'store', 'gfs'],
  './src/manager': ['core', 'api', 'store', 'events', 'gfs'],
  './web': ['core', 'api'],
};
const layers = Object.entries(mayImport).map(([target, allowed]) => ({
  target,
  from: folders
    .filter((f) => !allowed.includes(f) && `./src/${f}` !== target)
    .map((f) => `./src/${f}`),
}));

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'dist-bench/**',
      'node_modules/**',
      'coverage/**',
      '.drover/**',
      'bin/**',
      'test-artifacts/**',
      'web/dist/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { 'import-x': importX },
    // The TypeScript resolver maps `./x.js` imports to `./x.ts`: without it import-x resolves
    // none of our imports and the layering and cycle rules check nothing.
    settings: {
      'import-x/extensions': ['.ts', '.tsx', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.tsx'] },
      'import-x/resolver-next': [
        createTypeScriptImportResolver({ project: './tsconfig.json', alwaysTryTypes: true }),
      ],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksVoidReturn: { arguments: false } },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      'import-x/no-cycle': 'error',
      'import-x/no-restricted-paths': ['error', { zones: layers }],
    },
  },
  {
    // One string schema for outside input: `text()` refuses NUL and lone surrogates, which
    // PostgreSQL, argv and the environment cannot take (see src/core/text.ts). Tests may
    // build raw strings on purpose.
    files: ['**/*.{ts,tsx}'],
    // Reply schemas describe what the manager sends, never parse what it is sent.
    ignores: ['src/core/text.ts', 'src/api/replies.ts', '**/*.test.ts', 'test/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector:
            "CallExpression[callee.type='MemberExpression'][callee.object.name='z'][callee.property.name='string']",
          message:
            'use text() from src/core/text.ts instead of z.string(): it refuses NUL and lone surrogates',
        },
      ],
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  {
    // The web monitor (React, browser): its own tsconfigs, hooks rules, no Node modules, and
    // nothing of the server but type-only imports from src/core.
    files: ['web/**/*.{ts,tsx}'],
    languageOptions: {
      parserOptions: {
        projectService: false,
        project: ['./web/tsconfig.json', './web/tsconfig.node.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { 'react-hooks': reactHooks },
    settings: {
      'import-x/resolver-next': [
        createTypeScriptImportResolver({
          project: ['./web/tsconfig.json', './web/tsconfig.node.json'],
          noWarnOnMultipleProjects: true,
        }),
      ],
    },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'error',
      // Do not follow imports into node_modules: Vite's dependency tree holds packages with a
      // `node/` folder that import-x's legacy resolver lookup mistakes for a resolver.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  {
    files: ['web/src/**/*.{ts,tsx}'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'the monitor runs in the browser: no Node modules' },
            {
              group: ['**/src/core/*'],
              allowTypeImports: true,
              message: 'the monitor may import only types from src/core (import type …)',
            },
          ],
        },
      ],
    },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
);
