import { defineModelSuite } from './suite.js';

defineModelSuite('thread-per-connection', { workers: 32 });
