/** Every scenario, in the order the runner runs them. */
import type { Scenario } from './scenario.js';
import { multiplex } from './scenarios/multiplex.js';

export const scenarios: Scenario[] = [multiplex];
