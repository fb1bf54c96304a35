/** Every scenario, in the order the runner runs them: one line each. */
import type { Scenario } from './scenario.js';
import { multiplex } from './scenarios/multiplex.js';
import { copy } from './scenarios/copy.js';
import { read } from './scenarios/read.js';
import { uringRead } from './scenarios/uring-read.js';
import { anchorsNode } from './scenarios/anchors-node.js';

// prettier-ignore
export const scenarios: Scenario[] = [
  multiplex,
  copy,
  read,
  anchorsNode,
  uringRead,
];
