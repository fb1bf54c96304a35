/**
 * The `single` model: one reactor on one thread: accept, I/O and handlers (Redis's model).
 */
import { startReactorGroup } from './reactor-group.js';
import type { ModelStarter } from './types.js';

export const start: ModelStarter = (opts) => startReactorGroup(opts, { reactors: 1, mainAcceptor: false, pool: 0 });
