/**
 * The `multi-reactor` model: a main reactor accepts and deals connections round-robin to `workers` sub-reactor threads, each with its own epoll (Netty, memcached).
 */
import { startReactorGroup } from './reactor-group.js';
import type { ModelStarter } from './types.js';

export const start: ModelStarter = (opts) =>
  startReactorGroup(opts, { reactors: opts.workers, mainAcceptor: true, pool: 0 });
