// close(2) that also forgets the fd's owner (native/fd_owner.cc): every close of an fd that a
// thread may own goes through here, so the owner's exit never closes the number again.
#pragma once

namespace rawio {
// close(fd): 0 or -errno (EINTR counts as closed).
long CloseFd(int fd);
// fdOwn(fd) for environment `env` (a napi_env), called on that environment's thread.
void FdOwnBy(int fd, void* env);
// Closes every fd environment `env` still owns, as its exit does (a TCP socket with unsent
// bytes is reset): a ring's exit calls it before waiting for its operations.
void FdCloseOwnedBy(void* env);
}  // namespace rawio
