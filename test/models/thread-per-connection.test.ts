import { defineModelSuite } from './suite.js';
import { defineUserCodeSuite } from './usercode-suite.js';

defineModelSuite('thread-per-connection', { workers: 32 });
defineUserCodeSuite('thread-per-connection');
