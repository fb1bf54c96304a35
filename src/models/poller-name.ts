/** The multiplexer names a reactor model accepts (the Poller contract's `name`). */
export type PollerName = 'select' | 'poll' | 'epoll' | 'epoll-et';
export const pollerNames: readonly PollerName[] = ['select', 'poll', 'epoll', 'epoll-et'];
