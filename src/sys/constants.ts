/**
 * The kernel's own values for the flags rawio's calls take (epoll, poll, open, splice,
 * posix_fadvise, rlimits, the errnos the loops test for), read from the C headers when the
 * addon was built, so they are right on every architecture.
 */
import { native } from './native.js';

export const constants = Object.freeze({ ...native.constants });
