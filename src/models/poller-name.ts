/** The multiplexer names a reactor model accepts: the Poller contract's own. */
export { pollerNames, type PollerName } from '../loop/poller.js';
