{
  "targets": [
    {
      "target_name": "hybrid_interceptor",
      "sources": [
        "src/addon.cc",
        "src/session.cc",
        "src/session_start.cc",
        "src/child.cc",
        "src/syscall_table.cc",
        "src/path_rules.cc",
        "src/tracee_access.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
