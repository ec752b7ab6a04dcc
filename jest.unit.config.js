// `npm run test:unit`: the suites that need no binaries (no cluster in global setup), in seconds.
const base = require('./jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  testMatch: ['<rootDir>/test/*.test.ts'],
  globalSetup: undefined,
  globalTeardown: undefined,
};
