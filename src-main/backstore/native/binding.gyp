{
  "targets": [
    {
      "target_name": "spindle_backstore",
      "sources": ["spindle_backstore.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "defines": ["_GNU_SOURCE", "_FILE_OFFSET_BITS=64", "NAPI_VERSION=8"]
    }
  ]
}
