/** Every scenario, in the order the runner runs them. */
import type { Scenario } from './scenario.js';
import { anchorsNode } from './scenarios/anchors-node.js';

export const scenarios: Scenario[] = [anchorsNode];
