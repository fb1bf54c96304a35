/**
 * The `worker-pool` model: one reactor thread does all I/O; handlers run on `workers` pool threads and their replies return to the reactor to be written.
 */
import { startReactorGroup } from './reactor-group.js';
import type { ModelStarter } from './types.js';

export const start: ModelStarter = (opts) =>
  startReactorGroup(opts, { reactors: 1, mainAcceptor: false, pool: opts.workers });
