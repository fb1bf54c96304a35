import { defineModelSuite } from './suite.js';

defineModelSuite('iterative');
