/*
 * spindle_backstore: the few file-system calls Node does not expose, run on
 * the libuv thread pool (napi_create_async_work) like fs.read/fs.write.
 *
 *   punchHole(fd, offset, length, cb)  fallocate(PUNCH_HOLE | KEEP_SIZE)
 *                                      (on a block device: write zeroes / unmap)
 *   allocate(fd, offset, length, cb)   fallocate(0): reserve blocks (thick images)
 *   discard(fd, offset, length, cb)    ioctl(BLKDISCARD) on a block device
 *   seekData(fd, offset, cb)           lseek(SEEK_DATA)
 *   seekHole(fd, offset, cb)           lseek(SEEK_HOLE)
 *
 * and one synchronous call, made on the main thread:
 *
 *   preadNowait(fd, buffer, bufOffset, length, position) -> number
 *                                      preadv2(RWF_NOWAIT): copies what the
 *                                      page cache holds without ever blocking
 *                                      on the disk; returns the bytes read
 *                                      (possibly fewer than asked, 0 at end
 *                                      of file) or -errno (-EAGAIN: not
 *                                      cached, -EOPNOTSUPP/-ENOSYS: the file
 *                                      or kernel cannot). A small read of a
 *                                      cached block costs a few microseconds
 *                                      this way instead of a thread-pool
 *                                      round trip.
 *
 * Every callback is cb(errno, result): errno is 0 on success, else the
 * positive errno value (the JS side turns it into an ErrnoException); result
 * is the lseek position (0 for the others). Plain node_api.h, no C++.
 */
#include <node_api.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#endif

typedef enum { OP_PUNCH_HOLE, OP_ALLOCATE, OP_DISCARD, OP_SEEK_DATA, OP_SEEK_HOLE } op_kind;

typedef struct {
  op_kind kind;
  int fd;
  int64_t offset;
  int64_t length;
  int64_t result;
  int err;
  napi_ref callback;
  napi_async_work work;
} op_t;

static void execute(napi_env env, void *data) {
  (void)env;
  op_t *op = (op_t *)data;
  op->err = 0;
  op->result = 0;
#ifdef __linux__
  switch (op->kind) {
    case OP_PUNCH_HOLE:
      if (fallocate(op->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)op->offset, (off_t)op->length) != 0)
        op->err = errno;
      break;
    case OP_ALLOCATE:
      if (fallocate(op->fd, 0, (off_t)op->offset, (off_t)op->length) != 0) op->err = errno;
      break;
    case OP_DISCARD: {
      uint64_t range[2] = {(uint64_t)op->offset, (uint64_t)op->length};
      if (ioctl(op->fd, BLKDISCARD, &range) != 0) op->err = errno;
      break;
    }
    case OP_SEEK_DATA:
    case OP_SEEK_HOLE: {
      off_t r = lseek(op->fd, (off_t)op->offset, op->kind == OP_SEEK_DATA ? SEEK_DATA : SEEK_HOLE);
      if (r < 0) op->err = errno;
      else op->result = (int64_t)r;
      break;
    }
  }
#else
  op->err = ENOSYS;
#endif
}

static void complete(napi_env env, napi_status status, void *data) {
  op_t *op = (op_t *)data;
  napi_value cb, undefined, argv[2], ignored;
  int err = status == napi_cancelled ? ECANCELED : op->err;
  if (napi_get_reference_value(env, op->callback, &cb) == napi_ok && napi_get_undefined(env, &undefined) == napi_ok &&
      napi_create_int32(env, err, &argv[0]) == napi_ok && napi_create_int64(env, op->result, &argv[1]) == napi_ok) {
    napi_status s = napi_call_function(env, undefined, cb, 2, argv, &ignored);
    if (s == napi_pending_exception) {
      /* The JS callback threw: report it as an uncaught exception, as fs does. */
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    }
  }
  napi_delete_reference(env, op->callback);
  napi_delete_async_work(env, op->work);
  free(op);
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  /* A whole, non-negative number no larger than 2^53. */
  if (!(d >= 0) || d > 9007199254740992.0 || d != (double)(int64_t)d) return 0;
  *out = (int64_t)d;
  return 1;
}

/* Shared front end: (fd, offset[, length], cb). */
static napi_value start(napi_env env, napi_callback_info info, op_kind kind, int with_length) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  size_t want = with_length ? 4 : 3;
  if (argc < want) return throw_type(env, with_length ? "expected (fd, offset, length, callback)" : "expected (fd, offset, callback)");

  int64_t fd, offset, length = 0;
  if (!get_i64(env, argv[0], &fd) || fd > INT32_MAX) return throw_type(env, "fd must be a non-negative integer");
  if (!get_i64(env, argv[1], &offset)) return throw_type(env, "offset must be a non-negative integer");
  if (with_length && !get_i64(env, argv[2], &length)) return throw_type(env, "length must be a non-negative integer");
  napi_value cb = argv[want - 1];
  napi_valuetype t;
  if (napi_typeof(env, cb, &t) != napi_ok || t != napi_function) return throw_type(env, "callback must be a function");

  op_t *op = (op_t *)calloc(1, sizeof(op_t));
  if (op == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  op->kind = kind;
  op->fd = (int)fd;
  op->offset = offset;
  op->length = length;

  static const char *names[] = {"spindle.punchHole", "spindle.allocate", "spindle.discard", "spindle.seekData",
                                "spindle.seekHole"};
  napi_value resource_name;
  if (napi_create_reference(env, cb, 1, &op->callback) != napi_ok ||
      napi_create_string_utf8(env, names[kind], NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, execute, complete, op, &op->work) != napi_ok) {
    if (op->callback) napi_delete_reference(env, op->callback);
    free(op);
    napi_throw_error(env, NULL, "cannot queue the operation");
    return NULL;
  }
  if (napi_queue_async_work(env, op->work) != napi_ok) {
    napi_delete_reference(env, op->callback);
    napi_delete_async_work(env, op->work);
    free(op);
    napi_throw_error(env, NULL, "cannot queue the operation");
    return NULL;
  }
  return NULL;
}

/* preadNowait(fd, buffer, bufOffset, length, position): see the top of the file. */
static napi_value pread_nowait(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 5) return throw_type(env, "expected (fd, buffer, bufOffset, length, position)");
  int64_t fd, buf_offset, length, position;
  if (!get_i64(env, argv[0], &fd) || fd > INT32_MAX) return throw_type(env, "fd must be a non-negative integer");
  void *data = NULL;
  size_t size = 0;
  bool is_buffer = false;
  if (napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok)
    return throw_type(env, "buffer must be a Buffer");
  if (!get_i64(env, argv[2], &buf_offset) || !get_i64(env, argv[3], &length) || !get_i64(env, argv[4], &position))
    return throw_type(env, "bufOffset, length and position must be non-negative integers");
  if ((uint64_t)buf_offset > size || (uint64_t)length > size - (uint64_t)buf_offset) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "bufOffset + length is past the end of the buffer");
    return NULL;
  }
  int64_t r;
#if defined(__linux__) && defined(RWF_NOWAIT) && defined(SYS_preadv2)
  struct iovec iov = {(char *)data + buf_offset, (size_t)length};
  /* The raw syscall (old C libraries lack the preadv2 wrapper); the kernel takes the
   * position as (low, high) longs: on 64-bit the low one carries all of it. */
  unsigned long pos_low = (unsigned long)position;
  unsigned long pos_high = sizeof(long) >= 8 ? 0 : (unsigned long)((uint64_t)position >> 32);
  long n;
  do {
    n = syscall(SYS_preadv2, (int)fd, &iov, 1, pos_low, pos_high, RWF_NOWAIT);
  } while (n < 0 && errno == EINTR);
  r = n < 0 ? -(int64_t)errno : (int64_t)n;
#else
  (void)data;
  (void)fd;
  (void)position;
  r = -ENOSYS;
#endif
  napi_value out;
  if (napi_create_int64(env, r, &out) != napi_ok) return NULL;
  return out;
}

static napi_value punch_hole(napi_env env, napi_callback_info info) { return start(env, info, OP_PUNCH_HOLE, 1); }
static napi_value allocate(napi_env env, napi_callback_info info) { return start(env, info, OP_ALLOCATE, 1); }
static napi_value discard(napi_env env, napi_callback_info info) { return start(env, info, OP_DISCARD, 1); }
static napi_value seek_data(napi_env env, napi_callback_info info) { return start(env, info, OP_SEEK_DATA, 0); }
static napi_value seek_hole(napi_env env, napi_callback_info info) { return start(env, info, OP_SEEK_HOLE, 0); }

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"punchHole", NULL, punch_hole, NULL, NULL, NULL, napi_enumerable, NULL},
      {"allocate", NULL, allocate, NULL, NULL, NULL, napi_enumerable, NULL},
      {"discard", NULL, discard, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seekData", NULL, seek_data, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_enumerable, NULL},
      {"preadNowait", NULL, pread_nowait, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
