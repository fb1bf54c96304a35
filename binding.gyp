{
  "target_defaults": {
    "dependencies": [
      "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
    ],
    "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2", "-fno-strict-aliasing"],
    "cflags_cc!": ["-std=gnu++17", "-std=gnu++20", "-fno-exceptions"],
    "defines": ["_GNU_SOURCE", "NAPI_VERSION=8", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
    "libraries": ["-lrt", "-lpthread"],
    "conditions": [
      ["OS!='linux'", { "sources!": [], "defines": ["RAWIO_UNSUPPORTED_OS"] }]
    ]
  },
  "targets": [
    {
      "target_name": "rawio",
      "sources": [
        "native/addon.cc",
        "native/constants.cc",
        "native/socket.cc",
        "native/select.cc",
        "native/poll.cc",
        "native/epoll.cc",
        "native/watch.cc",
        "native/process.cc",
        "native/file.cc",
        "native/zerocopy.cc",
        "native/msg_zerocopy.cc",
        "native/uring.cc",
        "native/netdev.cc",
        "native/keyspace.cc",
        "native/fd_owner.cc"
      ]
    },
    {
      "target_name": "rawio_loadgen",
      "sources": [
        "native/loadgen_addon.cc",
        "native/loadgen.cc",
        "native/loadgen_engine.cc"
      ]
    }
  ]
}
