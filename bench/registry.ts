/** Every scenario, in the order the runner runs them. */
import type { Scenario } from './scenario.js';

export const scenarios: Scenario[] = [];
