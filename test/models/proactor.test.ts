import { defineModelSuite } from './suite.js';
import { defineUserCodeSuite } from './usercode-suite.js';

defineModelSuite('proactor');
defineUserCodeSuite('proactor');
