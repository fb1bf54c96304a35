/** Every scenario, in the order the runner runs them. */
import type { Scenario } from './scenario.js';
import { uringRead } from './scenarios/uring-read.js';

export const scenarios: Scenario[] = [uringRead];
