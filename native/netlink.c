/*
 * Link events over rtnetlink (issue 18), so that the TC packet source can follow pod veths as they
 * come and go: linkWatch(onEvents) opens a NETLINK_ROUTE socket in the RTMGRP_LINK group, asks for a
 * dump of every link (RTM_GETLINK, NLM_F_DUMP), then follows RTM_NEWLINK / RTM_DELLINK (rtnetlink(7)).
 * A thread of its own reads the socket and hands the raw netlink messages to JS, which parses them
 * (src/capture/tc/links.ts): bad bytes there become a counted problem instead of a crash here.
 *
 * The bytes JS gets are whole netlink messages, each padded to 4 bytes (netlink(7)), plus one
 * message of our own: TW_NLMSG_RESYNC (a bare nlmsghdr) says that events were lost (ENOBUFS: the
 * receive buffer overflowed, or a datagram did not fit) and that a new dump follows, up to its
 * NLMSG_DONE, so that JS can reconcile. A dump ends with NLMSG_DONE (or NLMSG_ERROR) bearing the
 * dump's sequence number, both passed on as they come.
 *
 * Route events need no privilege; a larger receive buffer than rmem_max (SO_RCVBUFFORCE) does,
 * so it is tried first and SO_RCVBUF is the fallback. The buffer's size is an optional second
 * argument (default 8 MiB): a tiny one lets a test lose events on purpose.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Above every rtnetlink type (RTM_MAX is below 0x100): never sent by the kernel. */
#define TW_NLMSG_RESYNC 0x7f00
#define NL_RCVBUF (8 << 20)
#define NL_RECV_BYTES (64 << 10)
#define NL_POLL_MS 100
/* Tells our handles from the addon's other externals (open()'s), which close() would misread. */
#define NL_WATCH_MAGIC 0x74776c6bu

struct nl_watch {
	uint32_t magic;
	int fd;
	pthread_t thread;
	int thread_started;
	volatile int stop;
	int closed;
	napi_threadsafe_function tsfn;
	/* the poll thread's own: the sequence number of the dump running (0: none) */
	uint32_t seq, dump_seq;
	int resync_pending;
	/* after a failed dump, not before this (CLOCK_MONOTONIC ms): a lasting error must not spin */
	uint64_t retry_at;
};

/* What goes through the threadsafe function: a length and the bytes. */
struct nl_batch {
	size_t len;
	uint8_t bytes[];
};

static int send_dump(struct nl_watch *w)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	req.nh.nlmsg_type = RTM_GETLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.nh.nlmsg_seq = ++w->seq ? w->seq : ++w->seq;
	req.ifi.ifi_family = AF_UNSPEC;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(w->fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	w->dump_seq = req.nh.nlmsg_seq;
	return 0;
}

/* Hand bytes to JS; retries while JS's queue is full, until close. */
static void deliver(struct nl_watch *w, const uint8_t *bytes, size_t len)
{
	if (!len)
		return;
	struct nl_batch *b = malloc(sizeof(*b) + len);
	if (!b)
		return;
	b->len = len;
	memcpy(b->bytes, bytes, len);
	for (;;) {
		napi_status st = napi_call_threadsafe_function(w->tsfn, b, napi_tsfn_nonblocking);
		if (st == napi_ok)
			return;
		if (st != napi_queue_full || w->stop) {
			free(b);
			return;
		}
		usleep(1000);
	}
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void resync(struct nl_watch *w)
{
	if (w->dump_seq || now_ms() < w->retry_at) {
		/* a dump runs (a second request would fail with EBUSY), or one just failed: ask later */
		w->resync_pending = 1;
		return;
	}
	struct nlmsghdr marker = { .nlmsg_len = sizeof(struct nlmsghdr), .nlmsg_type = TW_NLMSG_RESYNC };
	if (send_dump(w) == 0) {
		w->resync_pending = 0;
		marker.nlmsg_seq = w->dump_seq;
		deliver(w, (const uint8_t *)&marker, sizeof(marker));
	} else {
		w->resync_pending = 1;
		w->retry_at = now_ms() + NL_POLL_MS;
	}
}

/* Copy each message of a datagram, padded to 4 bytes; notice the end of our dump. */
static size_t repack(struct nl_watch *w, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t off = 0, len = 0;
	while (n - off >= sizeof(struct nlmsghdr)) {
		const struct nlmsghdr *nh = (const struct nlmsghdr *)(in + off);
		if (nh->nlmsg_len < sizeof(*nh) || nh->nlmsg_len > n - off)
			break; /* JS counts what is left as malformed: pass it on whole */
		if ((nh->nlmsg_type == NLMSG_DONE || nh->nlmsg_type == NLMSG_ERROR) && w->dump_seq && nh->nlmsg_seq == w->dump_seq) {
			w->dump_seq = 0;
			if (nh->nlmsg_type == NLMSG_ERROR) {
				/* the dump failed: ask again, marked, a little later */
				w->resync_pending = 1;
				w->retry_at = now_ms() + NL_POLL_MS;
			}
		}
		size_t aligned = NLMSG_ALIGN(nh->nlmsg_len);
		memcpy(out + len, nh, nh->nlmsg_len);
		memset(out + len + nh->nlmsg_len, 0, aligned - nh->nlmsg_len);
		len += aligned;
		off += aligned < n - off ? aligned : n - off;
	}
	if (off < n) {
		memcpy(out + len, in + off, n - off);
		len += n - off;
	}
	return len;
}

static void *watch_main(void *arg)
{
	struct nl_watch *w = arg;
	uint8_t *in = malloc(NL_RECV_BYTES), *out = malloc(NL_RECV_BYTES + 8);
	if (!in || !out)
		goto done;
	while (!w->stop) {
		struct pollfd p = { .fd = w->fd, .events = POLLIN };
		int r = poll(&p, 1, NL_POLL_MS);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0) {
			if (w->resync_pending)
				resync(w);
			continue;
		}
		/* drain what waits, then poll again (so that stop is seen within NL_POLL_MS) */
		for (int i = 0; i < 256 && !w->stop; i++) {
			struct iovec iov = { in, NL_RECV_BYTES };
			struct sockaddr_nl from;
			struct msghdr msg = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1 };
			ssize_t n = recvmsg(w->fd, &msg, MSG_DONTWAIT);
			if (n < 0) {
				if (errno == ENOBUFS) {
					/* the kernel dropped events: the set JS holds may be wrong (netlink(7)) */
					resync(w);
					continue;
				}
				break; /* EAGAIN, EINTR: poll again */
			}
			if (from.nl_pid != 0)
				continue; /* only the kernel speaks on this socket */
			if (msg.msg_flags & MSG_TRUNC) {
				resync(w);
				continue;
			}
			deliver(w, out, repack(w, in, (size_t)n, out));
			if (w->resync_pending && !w->dump_seq)
				resync(w);
		}
	}
done:
	free(in);
	free(out);
	return NULL;
}

static void free_bytes(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)data;
	free(hint);
}

/* On the JS thread: one batch as a Buffer over the malloc'd bytes, freed with it. */
static void call_js(napi_env env, napi_value cb, void *context, void *data)
{
	(void)context;
	struct nl_batch *b = data;
	if (!env || !cb) {
		free(b);
		return;
	}
	napi_value buf, undef;
	if (napi_create_external_buffer(env, b->len, b->bytes, free_bytes, b, &buf) != napi_ok) {
		free(b);
		return;
	}
	napi_get_undefined(env, &undef);
	napi_call_function(env, undef, cb, 1, &buf, NULL);
}

/* Stop the thread first (it uses the threadsafe function), then let go of the function. */
static void watch_stop(struct nl_watch *w, napi_threadsafe_function_release_mode mode)
{
	if (w->closed)
		return;
	w->closed = 1;
	if (w->thread_started) {
		w->stop = 1;
		pthread_join(w->thread, NULL);
		w->thread_started = 0;
	}
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->tsfn)
		napi_release_threadsafe_function(w->tsfn, mode);
	w->tsfn = NULL;
}

/* At teardown (worker or process exit), batches still queued are not delivered. */
static void watch_env_cleanup(void *arg)
{
	watch_stop(arg, napi_tsfn_abort);
}

static void watch_finalize(napi_env env, void *data, void *hint)
{
	(void)hint;
	struct nl_watch *w = data;
	napi_remove_env_cleanup_hook(env, watch_env_cleanup, w);
	watch_stop(w, napi_tsfn_release);
	free(w);
}

static napi_value throw_errno(napi_env env, const char *what, int err)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "linkWatch: %s: %s", what, strerror(err));
	napi_throw_error(env, NULL, msg);
	return NULL;
}

static napi_value js_link_watch(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	napi_valuetype t = napi_undefined;
	napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
	if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) {
		napi_throw_type_error(env, NULL, "linkWatch(onEvents: (batch: Buffer) => void, receiveBufferBytes?: number)");
		return NULL;
	}
	int32_t size = NL_RCVBUF;
	if (argc >= 2 && napi_typeof(env, argv[1], &t) == napi_ok && t == napi_number) {
		napi_get_value_int32(env, argv[1], &size);
		if (size <= 0)
			size = NL_RCVBUF;
	}
	struct nl_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return throw_errno(env, "out of memory", ENOMEM);
	w->magic = NL_WATCH_MAGIC;
	w->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (w->fd < 0) {
		free(w);
		return throw_errno(env, "socket(NETLINK_ROUTE)", errno);
	}
	if (setsockopt(w->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(w->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	struct sockaddr_nl local = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	int err = 0;
	const char *what = NULL;
	if (bind(w->fd, (struct sockaddr *)&local, sizeof(local)) < 0)
		err = errno, what = "bind(RTMGRP_LINK)";
	else if ((err = -send_dump(w)) != 0)
		what = "send RTM_GETLINK";
	if (what) {
		close(w->fd);
		free(w);
		return throw_errno(env, what, err);
	}
	napi_value name;
	napi_create_string_utf8(env, "tapwire_linkwatch", NAPI_AUTO_LENGTH, &name);
	if (napi_create_threadsafe_function(env, argv[0], NULL, name, 64, 1, NULL, NULL, NULL, call_js, &w->tsfn) != napi_ok) {
		close(w->fd);
		free(w);
		napi_throw_error(env, NULL, "linkWatch: cannot create the threadsafe function");
		return NULL;
	}
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		watch_stop(w, napi_tsfn_release);
		free(w);
		napi_throw_error(env, NULL, "linkWatch: cannot start the thread");
		return NULL;
	}
	w->thread_started = 1;
	napi_add_env_cleanup_hook(env, watch_env_cleanup, w);
	napi_value ext;
	if (napi_create_external(env, w, watch_finalize, NULL, &ext) != napi_ok) {
		napi_remove_env_cleanup_hook(env, watch_env_cleanup, w);
		watch_stop(w, napi_tsfn_release);
		free(w);
		napi_throw_error(env, NULL, "linkWatch: cannot create the handle");
		return NULL;
	}
	return ext;
}

/* linkWatchClose(handle): stops and closes; a second call, or one on a finalized handle, does nothing. */
static napi_value js_link_watch_close(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
	void *p = NULL;
	napi_valuetype t = napi_undefined;
	if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external || napi_get_value_external(env, argv[0], &p) != napi_ok || !p ||
	    ((struct nl_watch *)p)->magic != NL_WATCH_MAGIC) {
		napi_throw_type_error(env, NULL, "linkWatchClose(handle): not a linkWatch handle");
		return NULL;
	}
	struct nl_watch *w = p;
	if (!w->closed) {
		napi_remove_env_cleanup_hook(env, watch_env_cleanup, w);
		watch_stop(w, napi_tsfn_release);
	}
	return NULL;
}

void tw_netlink_init(napi_env env, napi_value exports)
{
	napi_property_descriptor props[] = {
		{ "linkWatch", NULL, js_link_watch, NULL, NULL, NULL, napi_default, NULL },
		{ "linkWatchClose", NULL, js_link_watch_close, NULL, NULL, NULL, napi_default, NULL },
	};
	napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}
