import { defineModelSuite } from './suite.js';

defineModelSuite('worker-pool');
