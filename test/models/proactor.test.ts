import { defineModelSuite } from './suite.js';

defineModelSuite('proactor');
