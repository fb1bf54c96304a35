/** Every scenario, in the order the runner runs them. */
import { copy } from './scenarios/copy.js';
import { read } from './scenarios/read.js';
import type { Scenario } from './scenario.js';
import { uringRead } from './scenarios/uring-read.js';

export const scenarios: Scenario[] = [copy, read, uringRead];
