import { defineModelSuite } from './suite.js';

defineModelSuite('single');
