/** Every scenario, in the order the runner runs them: one line each. */
import type { Scenario } from './scenario.js';
import { multiplex } from './scenarios/multiplex.js';
import { copy } from './scenarios/copy.js';
import { copyC } from './scenarios/copy-c.js';
import { read } from './scenarios/read.js';
import { uringRead } from './scenarios/uring-read.js';
import { anchorsNode } from './scenarios/anchors-node.js';
import { servers } from './scenarios/servers.js';
import { httpWrk } from './scenarios/http-wrk.js';
import { latency } from './scenarios/latency.js';
import { staticFiles } from './scenarios/static.js';
import { redisBenchmark } from './scenarios/redis-benchmark.js';
import { ltEt } from './scenarios/lt-et.js';
import { accept } from './scenarios/accept.js';
import { stalledWorker } from './scenarios/stalled-worker.js';
import { c10k } from './scenarios/c10k.js';
import { pollution } from './scenarios/pollution.js';
import { syscalls } from './scenarios/syscalls.js';
import { ringOptions } from './scenarios/ring-options.js';
import { veth } from './scenarios/veth.js';
import { zerocopy } from './scenarios/zerocopy.js';

// prettier-ignore
export const scenarios: Scenario[] = [
  multiplex,
  copy,
  copyC,
  read,
  anchorsNode,
  uringRead,
  servers,
  httpWrk,
  latency,
  staticFiles,
  redisBenchmark,
  ltEt,
  accept,
  stalledWorker,
  c10k,
  pollution,
  syscalls,
  ringOptions,
  veth,
  zerocopy,
];
