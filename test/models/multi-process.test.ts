import { defineModelSuite } from './suite.js';
import { defineUserCodeSuite } from './usercode-suite.js';

defineModelSuite('multi-process');
defineUserCodeSuite('multi-process');
