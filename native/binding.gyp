{
  "targets": [
    {
      "target_name": "hybrid_interceptor",
      "sources": ["src/addon.cc", "src/tracer_client.cc", "src/wire.cc", "src/syscall_table.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    },
    {
      "target_name": "hybrid_tracer",
      "type": "executable",
      "sources": [
        "src/tracer_main.cc",
        "src/wire.cc",
        "src/session.cc",
        "src/session_start.cc",
        "src/child.cc",
        "src/syscall_table.cc",
        "src/path_rules.cc",
        "src/tracee_access.cc"
      ],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fexceptions"],
      "ldflags": ["-pthread"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
