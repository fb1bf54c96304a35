import { defineModelSuite } from './suite.js';
import { defineUserCodeSuite } from './usercode-suite.js';

defineModelSuite('worker-pool');
defineUserCodeSuite('worker-pool');
