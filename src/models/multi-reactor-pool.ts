/**
 * The `multi-reactor-pool` model: the main/sub reactors of multi-reactor, with handlers on a pool of `pool` threads; a reply returns to the sub-reactor that read the request, which writes it.
 */
import { startReactorGroup } from './reactor-group.js';
import type { ModelStarter } from './types.js';

export const start: ModelStarter = (opts) =>
  startReactorGroup(opts, { reactors: opts.workers, mainAcceptor: true, pool: opts.pool });
