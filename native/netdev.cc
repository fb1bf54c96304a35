// Network-device features, read with the ethtool ioctl (SIOCETHTOOL, see
// linux/ethtool.h): whether a device does scatter-gather (ETHTOOL_GSG) — the hardware
// feature that lets sendfile(2) hand page-cache pages to the device without a copy — and
// the offloads next to it (TSO, GSO, GRO, checksums). Read-only; any socket serves as the
// handle for the ioctl.
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "errors.h"
#include "families.h"

namespace rawio {
namespace {

// One ETHTOOL_G* value command on ifname: the value (0 or 1) or -errno.
long EthtoolValue(const std::string& ifname, uint32_t cmd) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  ethtool_value v{};
  v.cmd = cmd;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname.data(), ifname.size());
  ifr.ifr_data = reinterpret_cast<char*>(&v);
  long r = RetryEintr([&] { return ioctl(fd, SIOCETHTOOL, &ifr); });
  close(fd);
  return r < 0 ? r : static_cast<long>(v.data);
}

// ethtoolGet(ifname, feature): feature is 'sg' | 'tso' | 'gso' | 'gro' | 'tx-csum' | 'rx-csum'.
Napi::Value JsEthtoolGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = ArgCString(info, 0, "ifname");
  // A name the kernel cannot hold (IFNAMSIZ, its NUL included) is the caller's error: no
  // ioctl runs, so none is named as failing.
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) ThrowRange(env, "ifname must be 1 to 15 bytes");
  std::string feature = ArgCString(info, 1, "feature");
  uint32_t cmd = 0;
  if (feature == "sg")
    cmd = ETHTOOL_GSG;
  else if (feature == "tso")
    cmd = ETHTOOL_GTSO;
  else if (feature == "gso")
    cmd = ETHTOOL_GGSO;
  else if (feature == "gro")
    cmd = ETHTOOL_GGRO;
  else if (feature == "tx-csum")
    cmd = ETHTOOL_GTXCSUM;
  else if (feature == "rx-csum")
    cmd = ETHTOOL_GRXCSUM;
  else
    ThrowRange(env, "unknown feature");
  return Num(env, EthtoolValue(ifname, cmd));
}

}  // namespace

void InitNetdev(Napi::Env env, Napi::Object exports) {
  exports.Set("ethtoolGet", Napi::Function::New(env, JsEthtoolGet));
}

}  // namespace rawio
