import { defineModelSuite } from './suite.js';
import { defineUserCodeSuite } from './usercode-suite.js';

defineModelSuite('multi-reactor-pool');
defineUserCodeSuite('multi-reactor-pool');
