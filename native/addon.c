/*
 * tapwire_bpf.node: the N-API addon that loads native/tls.bpf.o with libbpf 1.1, attaches its
 * uprobes to an ELF file (libssl.so.3, or a binary that links OpenSSL statically such as node),
 * and hands ring-buffer records to JS in batches through a threadsafe function.
 *
 * JS API (see src/capture/tls/addon.ts for the typed face):
 *   open(objectPath, ringBytes, onBatch(buffer)) -> handle
 *       loads the object, attaches every tracepoint program (the syscall ones, sched_process_exec
 *       whose events say a process ran a new program, and sched_process_exit whose events say a
 *       process with probed TLS calls is gone), starts the poll thread.
 *       Each batch is one Buffer of records (struct tls_event + data), each padded to 8 bytes:
 *       data, bind, end (SSL_free, Go's Close), exec and exit events (tls_event.h).
 *   attach(handle, elfPath, pid) -> { attached: string[], failed: [name, message][] }
 *       uprobes + uretprobes on SSL_write, SSL_read, SSL_write_ex, SSL_read_ex, SSL_set_fd,
 *       SSL_free found by symbol name in elfPath; pid -1 for every process.
 *   attachAt(handle, elfPath, pid, [{ program, offset }]) -> { attached: string[], failed: [label, message][] }
 *       one uprobe per entry: `program` (a SEC("uprobe") program of tls.bpf.c) at the file offset
 *       `offset` of elfPath, found by JS (Go's crypto/tls: entries and every RET, since Go's moving
 *       stacks rule out uretprobes). Labels are "program@0xoffset".
 *   counters(handle) -> { events, bytes, batches, lost, calls, truncated, readFail, droppedAtClose, links }
 *   kernelCost(handle) -> [{ name, runTimeNs, runCnt, recursionMisses }] per loaded program, from
 *       bpf_prog_info (counted only while kernel.bpf_stats_enabled is on)
 *   clocks() -> [realtimeNs, monotonicNs] as BigInts, read back to back (bpf_ktime_get_ns is
 *       CLOCK_MONOTONIC, so epoch = ts - monotonic + realtime)
 *   close(handle): detaches every link, stops the thread, frees the object. Also run at env teardown
 *       (process exit) and when the handle is garbage-collected. Nothing is pinned: every uprobe is
 *       a perf-event link owned by an fd of this process, so the kernel drops it when the process
 *       dies, SIGKILL included.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include "tls_event.h"

#define BATCH_FLUSH_BYTES (1u << 20)
#define MAX_LINKS 4096
/* The BPF side wakes this thread only when 256 KiB wait (tls.bpf.c), so it also looks every POLL_MS:
 * the most an event waits in a quiet ring. */
#define POLL_MS 10

struct probe {
	const char *func;
	const char *enter;
	const char *leave; /* NULL: entry only */
};

static const struct probe PROBES[] = {
	{ "SSL_write", "ssl_write_enter", "ssl_write_leave" },
	{ "SSL_read", "ssl_read_enter", "ssl_read_leave" },
	{ "SSL_write_ex", "ssl_write_ex_enter", "ssl_write_ex_leave" },
	{ "SSL_read_ex", "ssl_read_ex_enter", "ssl_read_ex_leave" },
	{ "SSL_set_fd", "ssl_set_fd_enter", NULL },
	{ "SSL_free", "ssl_free_enter", NULL },
};

/* Marks a struct handle: an external of another kind (a link watch's) is refused, not misread. */
#define HANDLE_MAGIC 0x74776266u /* "twbf" */

struct handle {
	uint32_t magic;
	struct bpf_object *obj;
	struct ring_buffer *rb;
	struct bpf_link *links[MAX_LINKS];
	int nlinks;
	pthread_t thread;
	int thread_started;
	volatile int stop;
	int closed;
	napi_threadsafe_function tsfn;
	napi_env env;
	/* the batch being filled by the poll thread */
	uint8_t *batch;
	size_t batch_len, batch_cap;
	/* counters (poll thread writes, JS thread reads) */
	uint64_t events, bytes, batches, dropped_at_close;
	/* TC only: the exact --filter (a compiled libpcap program), set once before any frame flows */
	void *filter;
	uint64_t user_filtered;
};

void *tw_filter_compile(const char *expr, int linktype, char *err, size_t errlen);
int tw_filter_run(const void *prog, const unsigned char *pkt, unsigned caplen, unsigned len);
void tw_filter_free(void *prog);

/* struct tc_event (tc_event.h) as bytes: len at 12, caplen at 16, the frame after 24 */
#define TC_HDR 24

/* ---- libbpf's log: keep the last warnings so that JS errors can say why ---- */
static char last_log[2048];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static int on_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	pthread_mutex_lock(&log_lock);
	size_t have = strlen(last_log), add = strlen(line);
	if (have + add >= sizeof(last_log)) {
		last_log[0] = 0;
		have = 0;
	}
	if (add < sizeof(last_log))
		memcpy(last_log + have, line, add + 1);
	pthread_mutex_unlock(&log_lock);
	return 0;
}

static void log_reset(void)
{
	pthread_mutex_lock(&log_lock);
	last_log[0] = 0;
	pthread_mutex_unlock(&log_lock);
}

static void throw_libbpf(napi_env env, const char *what, int err)
{
	char msg[2600];
	pthread_mutex_lock(&log_lock);
	size_t n = strlen(last_log);
	while (n && (last_log[n - 1] == '\n'))
		last_log[--n] = 0;
	snprintf(msg, sizeof(msg), "%s: %s%s%s", what, strerror(err < 0 ? -err : err), n ? " (libbpf: " : "", n ? last_log : "");
	if (n)
		strncat(msg, ")", sizeof(msg) - strlen(msg) - 1);
	pthread_mutex_unlock(&log_lock);
	napi_throw_error(env, NULL, msg);
}

/* ---- poll thread ---- */
static void flush_batch(struct handle *h, int at_close)
{
	if (!h->batch_len)
		return;
	uint8_t *b = h->batch;
	size_t len = h->batch_len;
	/* the length travels in front of the bytes */
	h->batch = NULL;
	h->batch_len = h->batch_cap = 0;
	for (int tries = 0;; tries++) {
		napi_status st = napi_call_threadsafe_function(h->tsfn, b, napi_tsfn_nonblocking);
		if (st == napi_ok) {
			__atomic_add_fetch(&h->batches, 1, __ATOMIC_RELAXED);
			return;
		}
		if (st != napi_queue_full || h->stop || at_close) {
			/* count what is lost here (not the kernel's loss) */
			__atomic_add_fetch(&h->dropped_at_close, 1, __ATOMIC_RELAXED);
			free(b);
			return;
		}
		usleep(200);
	}
	(void)len;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct handle *h = ctx;
	const void *filter = __atomic_load_n(&h->filter, __ATOMIC_ACQUIRE);
	if (filter && size >= TC_HDR) {
		uint32_t len, caplen;
		memcpy(&len, (const uint8_t *)data + 12, 4);
		memcpy(&caplen, (const uint8_t *)data + 16, 4);
		if (caplen > size - TC_HDR)
			caplen = (uint32_t)(size - TC_HDR);
		if (!tw_filter_run(filter, (const uint8_t *)data + TC_HDR, caplen, len)) {
			__atomic_add_fetch(&h->user_filtered, 1, __ATOMIC_RELAXED);
			return 0;
		}
	}
	size_t padded = (size + 7) & ~(size_t)7;
	/* 8-byte prefix: total batch length is implicit; each record is self-describing (hdr.len) */
	if (h->batch_len + padded + 8 > h->batch_cap) {
		size_t cap = h->batch_cap ? h->batch_cap : 64 * 1024;
		while (cap < h->batch_len + padded + 8)
			cap *= 2;
		uint8_t *nb = realloc(h->batch, cap);
		if (!nb)
			return 0;
		if (!h->batch)
			memset(nb, 0, 8);
		h->batch = nb;
		h->batch_cap = cap;
		if (!h->batch_len)
			h->batch_len = 8;
	}
	memcpy(h->batch + h->batch_len, data, size);
	if (padded > size)
		memset(h->batch + h->batch_len + size, 0, padded - size);
	h->batch_len += padded;
	*(uint64_t *)h->batch = h->batch_len; /* the first 8 bytes: the batch's length */
	__atomic_add_fetch(&h->events, 1, __ATOMIC_RELAXED);
	if (size >= sizeof(struct tls_event))
		__atomic_add_fetch(&h->bytes, ((const struct tls_event *)data)->len, __ATOMIC_RELAXED);
	if (h->batch_len >= BATCH_FLUSH_BYTES)
		flush_batch(h, 0);
	return 0;
}

static void *poll_main(void *arg)
{
	struct handle *h = arg;
	while (!h->stop) {
		int n = ring_buffer__poll(h->rb, POLL_MS);
		if (n < 0 && n != -EINTR)
			break;
		/* poll consumes only a ring that woke it: on a timeout, take what waits without a wakeup */
		if (n == 0)
			ring_buffer__consume(h->rb);
		flush_batch(h, 0);
	}
	ring_buffer__consume(h->rb);
	flush_batch(h, 1);
	return NULL;
}

/* Runs on the JS thread: hand one batch over as a Buffer that owns the malloc'd bytes. */
static void free_batch(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)hint;
	free(data);
}

static void call_js(napi_env env, napi_value cb, void *context, void *data)
{
	(void)context;
	uint8_t *b = data;
	if (!env || !cb) {
		free(b);
		return;
	}
	uint64_t len = *(uint64_t *)b;
	napi_value buf, undef;
	if (napi_create_external_buffer(env, len, b, free_batch, NULL, &buf) != napi_ok) {
		free(b);
		return;
	}
	napi_get_undefined(env, &undef);
	napi_call_function(env, undef, cb, 1, &buf, NULL);
}

/* ---- lifecycle ---- */
static void do_close(struct handle *h)
{
	if (h->closed)
		return;
	h->closed = 1;
	/* Newest first: the uprobes go before the syscall tracepoints (attached at open), so a call
	 * still in flight while the uprobes are removed (slow: ~2 s for node's here) still finds its fd. */
	for (int i = h->nlinks - 1; i >= 0; i--)
		bpf_link__destroy(h->links[i]);
	h->nlinks = 0;
	if (h->thread_started) {
		h->stop = 1;
		pthread_join(h->thread, NULL);
		h->thread_started = 0;
	}
	if (h->rb)
		ring_buffer__free(h->rb);
	h->rb = NULL;
	if (h->obj)
		bpf_object__close(h->obj);
	h->obj = NULL;
	free(h->batch);
	h->batch = NULL;
	tw_filter_free(h->filter);
	h->filter = NULL;
	if (h->tsfn) {
		napi_release_threadsafe_function(h->tsfn, napi_tsfn_release);
		h->tsfn = NULL;
	}
}

static void env_cleanup(void *arg)
{
	struct handle *h = arg;
	if (h->tsfn) {
		/* at teardown, queued batches are not delivered */
		napi_release_threadsafe_function(h->tsfn, napi_tsfn_abort);
		h->tsfn = NULL;
	}
	do_close(h);
}

static void finalize_handle(napi_env env, void *data, void *hint)
{
	(void)hint;
	struct handle *h = data;
	napi_remove_env_cleanup_hook(env, env_cleanup, h);
	do_close(h);
	free(h);
}

static struct handle *get_handle(napi_env env, napi_value v)
{
	void *p = NULL;
	if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
		napi_throw_type_error(env, NULL, "not a tapwire_bpf handle");
		return NULL;
	}
	struct handle *h = p;
	if (h->magic != HANDLE_MAGIC) {
		napi_throw_type_error(env, NULL, "not a tapwire_bpf handle");
		return NULL;
	}
	if (h->closed) {
		napi_throw_error(env, NULL, "the probes are closed");
		return NULL;
	}
	return h;
}

/* The call's first `want` arguments into argv, or a TypeError naming the call's usage (returns 0). */
static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *usage)
{
	size_t argc = want;
	napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
	if (argc < want) {
		napi_throw_type_error(env, NULL, usage);
		return 0;
	}
	return 1;
}

static char *get_string(napi_env env, napi_value v)
{
	size_t len = 0;
	if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
		napi_throw_type_error(env, NULL, "expected a string");
		return NULL;
	}
	char *s = malloc(len + 1);
	napi_get_value_string_utf8(env, v, s, len + 1, &len);
	return s;
}

static napi_value js_open(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	if (!get_args(env, info, 3, argv, "open(objectPath, ringBytes, onBatch)"))
		return NULL;
	char *path = get_string(env, argv[0]);
	if (!path)
		return NULL;
	int64_t ring = 0;
	napi_get_value_int64(env, argv[1], &ring);

	log_reset();
	struct handle *h = calloc(1, sizeof(*h));
	h->magic = HANDLE_MAGIC;
	h->env = env;
	h->obj = bpf_object__open_file(path, NULL);
	if (!h->obj) {
		int err = errno;
		free(h);
		char what[600];
		snprintf(what, sizeof(what), "cannot open BPF object %s", path);
		free(path);
		throw_libbpf(env, what, err);
		return NULL;
	}
	free(path);
	struct bpf_map *events = bpf_object__find_map_by_name(h->obj, "events");
	if (events && ring > 0)
		bpf_map__set_max_entries(events, (uint32_t)ring);
	/* the uprobes are attached by attach(); only the tracepoints attach here */
	int err = bpf_object__load(h->obj);
	if (err) {
		bpf_object__close(h->obj);
		free(h);
		throw_libbpf(env, "cannot load the BPF programs", err);
		return NULL;
	}
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, h->obj)
	{
		const char *sec = bpf_program__section_name(prog);
		if (strncmp(sec, "tracepoint/", 11) != 0)
			continue;
		struct bpf_link *l = bpf_program__attach(prog);
		if (!l) {
			err = -errno;
			char what[300]; /* before do_close(): sec belongs to the object */
			snprintf(what, sizeof(what), "cannot attach %s", sec);
			do_close(h);
			free(h);
			throw_libbpf(env, what, err);
			return NULL;
		}
		h->links[h->nlinks++] = l;
	}
	h->rb = ring_buffer__new(bpf_map__fd(events), on_record, h, NULL);
	if (!h->rb) {
		err = -errno;
		do_close(h);
		free(h);
		throw_libbpf(env, "cannot open the ring buffer", err);
		return NULL;
	}
	napi_value name;
	napi_create_string_utf8(env, "tapwire_bpf", NAPI_AUTO_LENGTH, &name);
	if (napi_create_threadsafe_function(env, argv[2], NULL, name, 16, 1, NULL, NULL, NULL, call_js, &h->tsfn) != napi_ok) {
		do_close(h);
		free(h);
		napi_throw_error(env, NULL, "cannot create the threadsafe function");
		return NULL;
	}
	if (pthread_create(&h->thread, NULL, poll_main, h) != 0) {
		do_close(h);
		free(h);
		napi_throw_error(env, NULL, "cannot start the poll thread");
		return NULL;
	}
	h->thread_started = 1;
	napi_add_env_cleanup_hook(env, env_cleanup, h);
	napi_value ext;
	napi_create_external(env, h, finalize_handle, NULL, &ext);
	return ext;
}

static void failure_message(char *msg, size_t size, int err);

/* attach() and attachAt() answer { attached: [name], failed: [[name, message]] }. */
struct attach_result {
	napi_value result, attached, failed;
	uint32_t na, nf;
};

static void result_init(napi_env env, struct attach_result *r)
{
	napi_create_object(env, &r->result);
	napi_create_array(env, &r->attached);
	napi_create_array(env, &r->failed);
	r->na = r->nf = 0;
}

static void result_ok(napi_env env, struct attach_result *r, const char *name)
{
	napi_value v;
	napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v);
	napi_set_element(env, r->attached, r->na++, v);
}

/* A failure: err with the libbpf warnings logged since the last log_reset(). */
static void result_failed(napi_env env, struct attach_result *r, const char *name, int err)
{
	char msg[2600];
	failure_message(msg, sizeof(msg), err);
	napi_value pair, fname, fmsg;
	napi_create_array_with_length(env, 2, &pair);
	napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &fname);
	napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &fmsg);
	napi_set_element(env, pair, 0, fname);
	napi_set_element(env, pair, 1, fmsg);
	napi_set_element(env, r->failed, r->nf++, pair);
}

static napi_value result_done(napi_env env, struct attach_result *r)
{
	napi_set_named_property(env, r->result, "attached", r->attached);
	napi_set_named_property(env, r->result, "failed", r->failed);
	return r->result;
}

static napi_value js_attach(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	if (!get_args(env, info, 3, argv, "attach(handle, elfPath, pid)"))
		return NULL;
	struct handle *h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	char *path = get_string(env, argv[1]);
	if (!path)
		return NULL;
	int32_t pid = -1;
	napi_get_value_int32(env, argv[2], &pid);

	struct attach_result r;
	result_init(env, &r);
	for (size_t i = 0; i < sizeof(PROBES) / sizeof(PROBES[0]); i++) {
		const struct probe *p = &PROBES[i];
		const char *names[2] = { p->enter, p->leave };
		struct bpf_link *got[2] = { NULL, NULL };
		int err = 0;
		log_reset();
		for (int k = 0; k < 2 && !err; k++) {
			if (!names[k])
				continue;
			if (h->nlinks + 2 > MAX_LINKS) {
				err = -ENOSPC;
				break;
			}
			struct bpf_program *prog = bpf_object__find_program_by_name(h->obj, names[k]);
			if (!prog) {
				err = -ENOENT;
				break;
			}
			LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = p->func, .retprobe = k == 1);
			got[k] = bpf_program__attach_uprobe_opts(prog, pid, path, 0, &opts);
			if (!got[k])
				err = -errno;
		}
		if (err) {
			for (int k = 0; k < 2; k++)
				if (got[k])
					bpf_link__destroy(got[k]);
			result_failed(env, &r, p->func, err);
			continue;
		}
		for (int k = 0; k < 2; k++)
			if (got[k])
				h->links[h->nlinks++] = got[k];
		result_ok(env, &r, p->func);
	}
	free(path);
	return result_done(env, &r);
}

/* The libbpf warnings of the last failure, with err, as one message. */
static void failure_message(char *msg, size_t size, int err)
{
	pthread_mutex_lock(&log_lock);
	size_t n = strlen(last_log);
	while (n && last_log[n - 1] == '\n')
		last_log[--n] = 0;
	snprintf(msg, size, "%s%s%s", strerror(-err), n ? ": " : "", last_log);
	pthread_mutex_unlock(&log_lock);
}

static napi_value js_attach_at(napi_env env, napi_callback_info info)
{
	napi_value argv[4];
	if (!get_args(env, info, 4, argv, "attachAt(handle, elfPath, pid, [{ program, offset }])"))
		return NULL;
	struct handle *h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	bool is_array = false;
	napi_is_array(env, argv[3], &is_array);
	if (!is_array) {
		napi_throw_type_error(env, NULL, "attachAt: the fourth argument must be an array of { program, offset }");
		return NULL;
	}
	char *path = get_string(env, argv[1]);
	if (!path)
		return NULL;
	int32_t pid = -1;
	napi_get_value_int32(env, argv[2], &pid);
	uint32_t count = 0;
	napi_get_array_length(env, argv[3], &count);

	struct attach_result r;
	result_init(env, &r);
	for (uint32_t i = 0; i < count; i++) {
		napi_value item, vprog, voff;
		napi_get_element(env, argv[3], i, &item);
		char prog_name[64] = "";
		double offset = -1;
		size_t len = 0;
		if (napi_get_named_property(env, item, "program", &vprog) != napi_ok ||
		    napi_get_value_string_utf8(env, vprog, prog_name, sizeof(prog_name), &len) != napi_ok ||
		    napi_get_named_property(env, item, "offset", &voff) != napi_ok || napi_get_value_double(env, voff, &offset) != napi_ok) {
			napi_throw_type_error(env, NULL, "attachAt: each entry needs program (string) and offset (number)");
			free(path);
			return NULL;
		}
		char label[96];
		snprintf(label, sizeof(label), "%s@0x%llx", prog_name, (unsigned long long)offset);
		int err = 0;
		struct bpf_link *l = NULL;
		log_reset();
		struct bpf_program *prog = bpf_object__find_program_by_name(h->obj, prog_name);
		if (h->nlinks + 1 > MAX_LINKS)
			err = -ENOSPC;
		else if (!prog)
			err = -ENOENT;
		else if (offset < 0)
			err = -EINVAL;
		else {
			/* No func_name: func_offset is the file offset itself. */
			LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = false);
			l = bpf_program__attach_uprobe_opts(prog, pid, path, (size_t)offset, &opts);
			if (!l)
				err = -errno;
		}
		if (err) {
			result_failed(env, &r, label, err);
			continue;
		}
		h->links[h->nlinks++] = l;
		result_ok(env, &r, label);
	}
	free(path);
	return result_done(env, &r);
}

/* The sum over CPUs of a per-CPU array of u64 at idx; vals has room for ncpu values. */
static uint64_t percpu_sum(struct bpf_map *m, uint32_t idx, uint64_t *vals, int ncpu)
{
	uint64_t sum = 0;
	if (m && bpf_map_lookup_elem(bpf_map__fd(m), &idx, vals) == 0)
		for (int i = 0; i < ncpu; i++)
			sum += vals[i];
	return sum;
}

static uint64_t sum_counter(struct handle *h, uint32_t idx)
{
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return 0;
	uint64_t *vals = calloc(ncpu, sizeof(uint64_t));
	uint64_t sum = percpu_sum(bpf_object__find_map_by_name(h->obj, "counters"), idx, vals, ncpu);
	free(vals);
	return sum;
}

static void set_num(napi_env env, napi_value obj, const char *name, double v)
{
	napi_value n;
	napi_create_double(env, v, &n);
	napi_set_named_property(env, obj, name, n);
}

static napi_value js_counters(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
	struct handle *h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	napi_value o;
	napi_create_object(env, &o);
	set_num(env, o, "events", (double)__atomic_load_n(&h->events, __ATOMIC_RELAXED));
	set_num(env, o, "bytes", (double)__atomic_load_n(&h->bytes, __ATOMIC_RELAXED));
	set_num(env, o, "batches", (double)__atomic_load_n(&h->batches, __ATOMIC_RELAXED));
	set_num(env, o, "droppedAtClose", (double)__atomic_load_n(&h->dropped_at_close, __ATOMIC_RELAXED));
	set_num(env, o, "lost", (double)sum_counter(h, TLS_CNT_LOST));
	set_num(env, o, "calls", (double)sum_counter(h, TLS_CNT_CALLS));
	set_num(env, o, "truncated", (double)sum_counter(h, TLS_CNT_TRUNCATED));
	set_num(env, o, "readFail", (double)sum_counter(h, TLS_CNT_READ_FAIL));
	set_num(env, o, "links", h->nlinks);
	set_num(env, o, "userFiltered", (double)__atomic_load_n(&h->user_filtered, __ATOMIC_RELAXED));
	return o;
}

/* userFiltered(handle): frames the exact filter left out, without counters()' map reads. */
static napi_value js_user_filtered(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
	struct handle *h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	napi_value n;
	napi_create_double(env, (double)__atomic_load_n(&h->user_filtered, __ATOMIC_RELAXED), &n);
	return n;
}

/*
 * setFilter(handle, expr, linkType): the reader thread keeps only frames libpcap's compiled
 * `expr` accepts (tcpdump syntax, as the agent's --filter), counting the others as userFiltered.
 * Set once, before the TC programs are attached: the thread reads the pointer without a lock.
 * A filter that does not compile throws with libpcap's words.
 */
static napi_value js_set_filter(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	if (!get_args(env, info, 3, argv, "setFilter(handle, expr, linkType)"))
		return NULL;
	struct handle *h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	if (h->filter) {
		napi_throw_error(env, NULL, "the filter is set already");
		return NULL;
	}
	char *expr = get_string(env, argv[1]);
	if (!expr)
		return NULL;
	int32_t linktype = 1;
	napi_get_value_int32(env, argv[2], &linktype);
	char err[512] = "";
	void *prog = tw_filter_compile(expr, linktype, err, sizeof(err));
	free(expr);
	if (!prog) {
		napi_throw_error(env, NULL, err);
		return NULL;
	}
	__atomic_store_n(&h->filter, prog, __ATOMIC_RELEASE);
	return NULL;
}

/* kernelCost(handle) -> [{ name, runTimeNs, runCnt, recursionMisses }]: each loaded program's
 * cumulative kernel time and runs from bpf_prog_info. The kernel counts them only while
 * kernel.bpf_stats_enabled (or a BPF_ENABLE_STATS fd) is on; otherwise they stay where they were. */
static napi_value js_kernel_cost(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
	struct handle *h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	napi_value arr;
	napi_create_array(env, &arr);
	uint32_t i = 0;
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, h->obj)
	{
		int fd = bpf_program__fd(prog);
		if (fd < 0)
			continue;
		struct bpf_prog_info pi;
		uint32_t len = sizeof(pi);
		memset(&pi, 0, sizeof(pi));
		if (bpf_obj_get_info_by_fd(fd, &pi, &len) != 0) {
			throw_libbpf(env, "bpf_obj_get_info_by_fd", errno);
			return NULL;
		}
		napi_value o, name;
		napi_create_object(env, &o);
		napi_create_string_utf8(env, bpf_program__name(prog), NAPI_AUTO_LENGTH, &name);
		napi_set_named_property(env, o, "name", name);
		set_num(env, o, "runTimeNs", (double)pi.run_time_ns);
		set_num(env, o, "runCnt", (double)pi.run_cnt);
		set_num(env, o, "recursionMisses", (double)pi.recursion_misses);
		napi_set_element(env, arr, i++, o);
	}
	return arr;
}

static napi_value js_close(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
	void *p = NULL;
	if (napi_get_value_external(env, argv[0], &p) == napi_ok && p && ((struct handle *)p)->magic == HANDLE_MAGIC) {
		struct handle *h = p;
		napi_remove_env_cleanup_hook(env, env_cleanup, h);
		do_close(h);
	}
	return NULL;
}

static napi_value js_clocks(napi_env env, napi_callback_info info)
{
	(void)info;
	struct timespec rt, mono;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	napi_value arr, a, b;
	napi_create_array_with_length(env, 2, &arr);
	napi_create_bigint_int64(env, (int64_t)rt.tv_sec * 1000000000LL + rt.tv_nsec, &a);
	napi_create_bigint_int64(env, (int64_t)mono.tv_sec * 1000000000LL + mono.tv_nsec, &b);
	napi_set_element(env, arr, 0, a);
	napi_set_element(env, arr, 1, b);
	return arr;
}

/*
 * filterMatches(expr, packets) -> boolean[]: libpcap's own verdict on raw IP packets (DLT_RAW), so
 * the agent's capture filter (--filter, tcpdump syntax) means the same for TLS plaintext, which has
 * no packets of its own, as for packets: JS builds one synthetic IP+TCP header per direction of a
 * connection. A filter that does not compile throws with libpcap's words. The libpcap side is in
 * native/pcapfilter.c, apart, since libpcap's classic struct bpf_insn clashes with linux/bpf.h's.
 */
int tw_filter_match(const char *expr, const unsigned char *const *pkts, const size_t *lens, unsigned n, int *out, char *err, size_t errlen);

static napi_value js_filter_matches(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	if (!get_args(env, info, 2, argv, "filterMatches(expr, packets)"))
		return NULL;
	char *expr = get_string(env, argv[0]);
	if (!expr)
		return NULL;
	uint32_t n = 0;
	napi_get_array_length(env, argv[1], &n);
	const unsigned char **pkts = calloc(n ? n : 1, sizeof(*pkts));
	size_t *lens = calloc(n ? n : 1, sizeof(*lens));
	int *res = calloc(n ? n : 1, sizeof(*res));
	for (uint32_t i = 0; i < n; i++) {
		napi_value b;
		void *data = NULL;
		size_t len = 0;
		napi_get_element(env, argv[1], i, &b);
		if (napi_get_buffer_info(env, b, &data, &len) != napi_ok)
			len = 0;
		pkts[i] = data;
		lens[i] = len;
	}
	char err[512] = "";
	int ok = tw_filter_match(expr, pkts, lens, n, res, err, sizeof(err));
	free(expr);
	napi_value out = NULL;
	if (ok != 0) {
		char msg[600];
		snprintf(msg, sizeof(msg), "filter: %s", err);
		napi_throw_error(env, NULL, msg);
	} else {
		napi_create_array_with_length(env, n, &out);
		for (uint32_t i = 0; i < n; i++) {
			napi_value v;
			napi_get_boolean(env, res[i] != 0, &v);
			napi_set_element(env, out, i, v);
		}
	}
	free(pkts);
	free(lens);
	free(res);
	return out;
}

/*
 * ---- TC clsact (native/tc.bpf.c; JS side src/capture/tc/) ----
 *   tcAttach(handle, program, ifindex, egress) -> { qdiscCreated }
 *       adds the clsact qdisc to the interface when it has none (qdiscCreated says this call made
 *       it), then attaches `program` as a direct-action filter with tapwire's handle and priority,
 *       replacing one left by an earlier tapwire process (BPF_TC_F_REPLACE).
 *   tcDetach(ifindex, egress) -> boolean: removes tapwire's filter (handle and priority), true
 *       when there was one. Also how a new process removes filters a SIGKILLed one left: a TC
 *       filter holds its program itself, not through an fd of the process, so it outlives it.
 *   tcDestroyQdisc(ifindex) -> boolean: removes the interface's clsact qdisc, and with it every
 *       filter on it, tapwire's or not: JS calls it only for a qdisc tapwire created.
 *   mapUpdate(handle, mapName, key, value): one element of a map of the object (Buffers).
 *   mapSums(handle, mapName, n) -> number[n]: keys 0..n-1 of a per-CPU array of u64, summed over CPUs.
 * Filters still attached at process exit are removed by an env cleanup hook, so a normal exit
 * without close() leaves no filter behind (the qdisc stays: see tc_env_cleanup).
 */
#define TW_TC_HANDLE 0x7477u /* "tw" */
#define TW_TC_PRIORITY 0x7477u
#define TW_TC_MAX 1024

struct tc_attachment {
	int ifindex;
	int egress;
	int qdisc_created;
};
static struct tc_attachment tc_attached[TW_TC_MAX];
static int tc_nattached;
static int tc_hook_added;

static int tc_detach_one(int ifindex, int egress)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TW_TC_HANDLE, .priority = TW_TC_PRIORITY);
	int err = bpf_tc_detach(&hook, &opts);
	for (int i = 0; i < tc_nattached; i++) {
		if (tc_attached[i].ifindex == ifindex && tc_attached[i].egress == egress) {
			tc_attached[i] = tc_attached[--tc_nattached];
			break;
		}
	}
	return err;
}

static int tc_destroy_qdisc(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	return bpf_tc_hook_destroy(&hook);
}

static void tc_env_cleanup(void *arg)
{
	(void)arg;
	/* Filters only: a qdisc this process created may hold other tools' filters by now, which JS
	 * checks before tcDestroyQdisc(); an empty clsact qdisc left behind costs a few instructions. */
	while (tc_nattached > 0) {
		struct tc_attachment a = tc_attached[tc_nattached - 1];
		tc_detach_one(a.ifindex, a.egress);
	}
}

static napi_value js_tc_attach(napi_env env, napi_callback_info info)
{
	napi_value argv[4];
	if (!get_args(env, info, 4, argv, "tcAttach(handle, program, ifindex, egress)"))
		return NULL;
	struct handle *h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	char name[64] = "";
	size_t nlen = 0;
	int32_t ifindex = 0;
	bool egress = false;
	if (napi_get_value_string_utf8(env, argv[1], name, sizeof(name), &nlen) != napi_ok || napi_get_value_int32(env, argv[2], &ifindex) != napi_ok ||
	    napi_get_value_bool(env, argv[3], &egress) != napi_ok || ifindex <= 0) {
		napi_throw_type_error(env, NULL, "tcAttach(handle, program: string, ifindex: positive integer, egress: boolean)");
		return NULL;
	}
	struct bpf_program *prog = bpf_object__find_program_by_name(h->obj, name);
	if (!prog) {
		char msg[128];
		snprintf(msg, sizeof(msg), "tcAttach: the object has no program %s", name);
		napi_throw_error(env, NULL, msg);
		return NULL;
	}
	int slot = -1;
	for (int i = 0; i < tc_nattached; i++)
		if (tc_attached[i].ifindex == ifindex && tc_attached[i].egress == (int)egress)
			slot = i;
	if (slot < 0 && tc_nattached >= TW_TC_MAX) {
		napi_throw_error(env, NULL, "tcAttach: too many TC attachments");
		return NULL;
	}
	log_reset();
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	int err = bpf_tc_hook_create(&hook);
	int created = err == 0;
	if (err && err != -EEXIST) {
		char what[96];
		snprintf(what, sizeof(what), "cannot add a clsact qdisc to ifindex %d", ifindex);
		throw_libbpf(env, what, err);
		return NULL;
	}
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(prog), .handle = TW_TC_HANDLE, .priority = TW_TC_PRIORITY,
		    .flags = BPF_TC_F_REPLACE);
	err = bpf_tc_attach(&hook, &opts);
	if (err) {
		if (created)
			tc_destroy_qdisc(ifindex);
		char what[128];
		snprintf(what, sizeof(what), "cannot attach %s to ifindex %d %s", name, ifindex, egress ? "egress" : "ingress");
		throw_libbpf(env, what, err);
		return NULL;
	}
	if (slot < 0) {
		slot = tc_nattached++;
		tc_attached[slot].qdisc_created = 0;
	}
	tc_attached[slot].ifindex = ifindex;
	tc_attached[slot].egress = egress;
	tc_attached[slot].qdisc_created |= created;
	if (!tc_hook_added) {
		napi_add_env_cleanup_hook(env, tc_env_cleanup, NULL);
		tc_hook_added = 1;
	}
	napi_value o, b;
	napi_create_object(env, &o);
	napi_get_boolean(env, created, &b);
	napi_set_named_property(env, o, "qdiscCreated", b);
	return o;
}

static napi_value js_tc_detach(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	if (!get_args(env, info, 2, argv, "tcDetach(ifindex, egress)"))
		return NULL;
	int32_t ifindex = 0;
	bool egress = false;
	if (napi_get_value_int32(env, argv[0], &ifindex) != napi_ok || napi_get_value_bool(env, argv[1], &egress) != napi_ok || ifindex <= 0) {
		napi_throw_type_error(env, NULL, "tcDetach(ifindex: positive integer, egress: boolean)");
		return NULL;
	}
	log_reset();
	int err = tc_detach_one(ifindex, egress);
	/* ENOENT: no such filter (or no clsact qdisc); ENODEV/ENXIO/EINVAL: the interface is gone */
	if (err && err != -ENOENT && err != -ENODEV && err != -ENXIO && err != -EINVAL) {
		char what[96];
		snprintf(what, sizeof(what), "cannot detach tapwire's filter from ifindex %d %s", ifindex, egress ? "egress" : "ingress");
		throw_libbpf(env, what, err);
		return NULL;
	}
	napi_value b;
	napi_get_boolean(env, err == 0, &b);
	return b;
}

static napi_value js_tc_destroy_qdisc(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	if (!get_args(env, info, 1, argv, "tcDestroyQdisc(ifindex)"))
		return NULL;
	int32_t ifindex = 0;
	if (napi_get_value_int32(env, argv[0], &ifindex) != napi_ok || ifindex <= 0) {
		napi_throw_type_error(env, NULL, "tcDestroyQdisc(ifindex: positive integer)");
		return NULL;
	}
	for (int i = 0; i < tc_nattached; i++)
		if (tc_attached[i].ifindex == ifindex)
			tc_attached[i].qdisc_created = 0;
	int err = tc_destroy_qdisc(ifindex);
	napi_value b;
	napi_get_boolean(env, err == 0, &b);
	return b;
}

static napi_value js_map_update(napi_env env, napi_callback_info info)
{
	napi_value argv[4];
	if (!get_args(env, info, 4, argv, "mapUpdate(handle, mapName, key, value)"))
		return NULL;
	struct handle *h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	char name[64] = "";
	size_t nlen = 0;
	void *key = NULL, *val = NULL;
	size_t klen = 0, vlen = 0;
	if (napi_get_value_string_utf8(env, argv[1], name, sizeof(name), &nlen) != napi_ok || napi_get_buffer_info(env, argv[2], &key, &klen) != napi_ok ||
	    napi_get_buffer_info(env, argv[3], &val, &vlen) != napi_ok) {
		napi_throw_type_error(env, NULL, "mapUpdate(handle, mapName: string, key: Buffer, value: Buffer)");
		return NULL;
	}
	struct bpf_map *m = bpf_object__find_map_by_name(h->obj, name);
	char what[160];
	if (!m || bpf_map__key_size(m) != klen || bpf_map__value_size(m) != vlen) {
		snprintf(what, sizeof(what), "mapUpdate: %s %s", name, m ? "has another key or value size" : "is not a map of the object");
		napi_throw_error(env, NULL, what);
		return NULL;
	}
	if (bpf_map_update_elem(bpf_map__fd(m), key, val, BPF_ANY) != 0) {
		snprintf(what, sizeof(what), "mapUpdate %s", name);
		throw_libbpf(env, what, errno);
		return NULL;
	}
	return NULL;
}

static napi_value js_map_sums(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	if (!get_args(env, info, 3, argv, "mapSums(handle, mapName, n)"))
		return NULL;
	struct handle *h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	char name[64] = "";
	size_t nlen = 0;
	uint32_t n = 0;
	napi_get_value_string_utf8(env, argv[1], name, sizeof(name), &nlen);
	napi_get_value_uint32(env, argv[2], &n);
	struct bpf_map *m = bpf_object__find_map_by_name(h->obj, name);
	int ncpu = libbpf_num_possible_cpus();
	if (!m || bpf_map__type(m) != BPF_MAP_TYPE_PERCPU_ARRAY || bpf_map__value_size(m) != 8 || ncpu <= 0) {
		napi_throw_error(env, NULL, "mapSums: not a per-CPU array of u64 in the object");
		return NULL;
	}
	uint64_t *vals = calloc(ncpu, sizeof(uint64_t));
	napi_value arr;
	napi_create_array_with_length(env, n, &arr);
	for (uint32_t k = 0; k < n; k++) {
		napi_value v;
		napi_create_double(env, (double)percpu_sum(m, k, vals, ncpu), &v);
		napi_set_element(env, arr, k, v);
	}
	free(vals);
	return arr;
}

void tw_netlink_init(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports)
{
	libbpf_set_print(on_libbpf_print);
	napi_property_descriptor props[] = {
		{ "open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL },
		{ "attach", NULL, js_attach, NULL, NULL, NULL, napi_default, NULL },
		{ "attachAt", NULL, js_attach_at, NULL, NULL, NULL, napi_default, NULL },
		{ "counters", NULL, js_counters, NULL, NULL, NULL, napi_default, NULL },
		{ "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
		{ "clocks", NULL, js_clocks, NULL, NULL, NULL, napi_default, NULL },
		{ "kernelCost", NULL, js_kernel_cost, NULL, NULL, NULL, napi_default, NULL },
		{ "filterMatches", NULL, js_filter_matches, NULL, NULL, NULL, napi_default, NULL },
		{ "tcAttach", NULL, js_tc_attach, NULL, NULL, NULL, napi_default, NULL },
		{ "tcDetach", NULL, js_tc_detach, NULL, NULL, NULL, napi_default, NULL },
		{ "tcDestroyQdisc", NULL, js_tc_destroy_qdisc, NULL, NULL, NULL, napi_default, NULL },
		{ "mapUpdate", NULL, js_map_update, NULL, NULL, NULL, napi_default, NULL },
		{ "mapSums", NULL, js_map_sums, NULL, NULL, NULL, napi_default, NULL },
		{ "setFilter", NULL, js_set_filter, NULL, NULL, NULL, napi_default, NULL },
		{ "userFiltered", NULL, js_user_filtered, NULL, NULL, NULL, napi_default, NULL },
	};
	napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
	napi_value v;
	napi_create_uint32(env, sizeof(struct tls_event), &v);
	napi_set_named_property(env, exports, "eventHeaderSize", v);
	tw_netlink_init(env, exports);
	return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
