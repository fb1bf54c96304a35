import { defineModelSuite } from './suite.js';

defineModelSuite('multi-process');
