import { defineModelSuite } from './suite.js';

defineModelSuite('multi-reactor');
