// Tests import the built package, as users do (`npm test` builds dist/ first).
export * from '../../dist/src/index.js';
